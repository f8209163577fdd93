"""The Generate tab: prior samples of the session's model (same seed, same grid), and the
programmatic endpoints for decoding a latent point and interpolating between two."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import torch

from ..generate import interpolate, traverse
from .common import BIG_PX, Refused, as_choice, as_float, as_int, display, guard, workspace

MAX_Z_ABS = 1e3  # latent coordinates beyond this are no place the prior puts mass
MAX_TRAVERSE_ROWS = 10
MAX_Z_TEXT = 20_000  # characters: enough for 512 numbers at full precision

# Reads of the session's own model: no queue limit (each holds only its session's lock).
FREE = {"concurrency_limit": None}


def _label(ws, label):
    if not ws.model.config.conditional:
        return None
    if label is None or label in ("", "all"):
        return None
    return as_int(label, "Class label", 0, ws.model.config.num_classes - 1)


def _parse_z(ws, text, name: str = "z") -> np.ndarray:
    """A latent point from untrusted JSON text, e.g. "[0.5, -1.2]"."""
    if isinstance(text, str) and len(text) > MAX_Z_TEXT:
        raise Refused(f"{name} is too long: give {ws.model.latent_dim} numbers.")
    try:
        values = json.loads(text) if isinstance(text, str) else text
        z = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise Refused(f"{name} must be a list of {ws.model.latent_dim} numbers, e.g. [0.5, -1.2].") from None
    if z.size != ws.model.latent_dim:
        raise Refused(f"{name} must have {ws.model.latent_dim} numbers, got {z.size}.")
    if not np.isfinite(z).all() or (np.abs(z) > MAX_Z_ABS).any():
        raise Refused(f"{name} must be finite numbers within ±{MAX_Z_ABS:g}.")
    return z.astype(np.float32)


def on_sample(ws, n, temperature, seed, label):
    ws = workspace(ws)
    n = as_int(n, "Number of samples", 1, 256)
    t = as_float(temperature, "Temperature", 0.0, 3.0)
    s = as_int(seed, "Seed", 0, 2**31 - 1)
    lab = _label(ws, label)
    if ws.model.config.conditional and lab is None:
        # One row per class, the same z down each column: the label steers, z holds the style.
        k = max(1, min(16, n // ws.model.config.num_classes))
        images = guard(lambda: ws.sample_by_class(k, t, s))
        return ws, display(images, nrow=k)
    images = guard(lambda: ws.sample(n, t, s, lab))
    return ws, display(images, nrow=min(8, n))


def on_traverse(ws, dimension, span, steps):
    """Rows of decodes varying one latent dimension over [-span, span] from z = 0, the others
    held at 0; "all" gives one row per dimension, most active (highest KL) first."""
    ws = workspace(ws)
    span = as_float(span, "Range", 0.1, 10.0)
    k = as_int(steps, "Steps", 3, 21)
    kl = ws.kl_per_dim()
    order = [int(d) for d in np.argsort(-kl)]
    dimension = str(dimension).strip() if dimension is not None else "all"
    if dimension in ("", "all"):
        dims = order[:MAX_TRAVERSE_ROWS]
    else:
        dims = [as_int(str(dimension).split()[0].lstrip("z"), "Dimension", 0, ws.model.latent_dim - 1)]
    z0 = torch.zeros(ws.model.latent_dim)
    zs = torch.cat([traverse(z0, d, -span, span, k) for d in dims]).numpy()
    grid = display(guard(lambda: ws.decode(zs)), nrow=k)
    rows = ", ".join(f"z{d} ({kl[d]:.2f} nats)" for d in dims)
    note = f"Rows, top to bottom: {rows}. A dimension with KL ≈ 0 is inactive: its row does not change."
    if ws.data.has_labels and len(ws.data.x_test) >= 40:
        info = guard(lambda: ws.label_information())
        mi = ", ".join(f"z{d} {info.mi_per_dim[d]:.2f}" for d in dims)
        note += (
            f"\n\nInformation about the class, I(z_d; y) in nats (at most H(y) = {info.label_entropy:.2f}): "
            f"{mi}. Mutual information gap (MIG): {info.mig:.2f} — near 1 when one dimension alone "
            "carries the class, near 0 when it is spread over several."
        )
    return ws, grid, note


def on_dimensions(ws):
    """The traversal's dimension choices, most active first."""
    ws = workspace(ws)
    kl = ws.kl_per_dim()
    choices = ["all"] + [f"z{d} ({kl[d]:.2f} nats)" for d in np.argsort(-kl)]
    return ws, gr.update(choices=choices, value="all")


def on_open(ws, n, temperature, seed, label, span, steps):
    """Opening the tab: the current model's samples and traversal are there at once."""
    ws, dims = on_dimensions(ws)
    _, grid = on_sample(ws, n, temperature, seed, label)
    _, trav, note = on_traverse(ws, "all", span, steps)
    return ws, dims, grid, trav, note


def on_decode(ws, z_text, label):
    ws = workspace(ws)
    z = _parse_z(ws, z_text)
    lab = _label(ws, label)  # None: Workspace.decode uses class 0 for a conditional model
    return ws, display(guard(lambda: ws.decode(z[None], lab)), nrow=1, tile=BIG_PX)


def on_interpolate(ws, z0_text, z1_text, steps, method):
    ws = workspace(ws)
    z0, z1 = _parse_z(ws, z0_text, "z0"), _parse_z(ws, z1_text, "z1")
    k = as_int(steps, "Steps", 2, 32)
    method = as_choice(method, "Method", ("linear", "slerp"))
    path = interpolate(torch.from_numpy(z0), torch.from_numpy(z1), k, method)
    return ws, display(guard(lambda: ws.decode(path.numpy())), nrow=k)


def on_model_info(ws):
    """What the session's model is: config, progress, last metrics and a hash of its weights."""
    ws = workspace(ws)
    last = ws.run.history[-1] if ws.run.history else None
    info = {
        "dataset": ws.run.dataset,
        "model_config": ws.model.config.to_dict(),
        "epoch": ws.run.epoch,
        "step": ws.run.step if ws.trainer is None else ws.trainer.step,
        "training": ws.is_training,
        "test_loss": last.test_loss if last else None,
        "active_units": last.active_units if last else None,
        "weights_sha256": ws.weights_hash(),
    }
    return ws, info


def build(state: gr.State, tab: gr.Tab | None = None) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            gr.Markdown("Decode z ~ N(0, T²·I) with the current model: same seed, same grid.")
            seed = gr.Number(
                0, precision=0, label="Seed", info="same seed, same samples", elem_id="sample-seed"
            )
            temperature = gr.Slider(
                0.0,
                3.0,
                value=1.0,
                step=0.1,
                label="Temperature",
                info="scales the prior's standard deviation",
            )
            n = gr.Slider(1, 256, value=64, step=1, label="Samples")
            label = gr.Dropdown(
                ["all", *[str(i) for i in range(10)]],
                value="all",
                label="Class (conditional models)",
                info="all: one row per class, the same z down each column",
            )
            button = gr.Button("Sample", variant="primary", elem_id="sample-button")
        with gr.Column(scale=2):
            grid = gr.Image(label="Samples", elem_id="sample-grid", format="png", interactive=False)
    button.click(on_sample, [state, n, temperature, seed, label], [state, grid], api_name="sample", **FREE)
    gr.Markdown("### Latent traversal\nSweep one dimension of z at a time from the prior's mean.")
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            dimension = gr.Dropdown(
                ["all"],
                value="all",
                label="Dimension",
                allow_custom_value=True,
                info="listed by KL, most active first",
            )
            span = gr.Slider(
                0.5, 5.0, value=3.0, step=0.5, label="Range ±", info="in prior standard deviations"
            )
            steps = gr.Slider(3, 21, value=7, step=1, label="Steps")
            trav_btn = gr.Button("Traverse", elem_id="traverse-button")
        with gr.Column(scale=2):
            trav = gr.Image(label="Traversal", elem_id="traverse-grid", interactive=False, format="png")
            trav_note = gr.Markdown()
    trav_btn.click(
        on_traverse, [state, dimension, span, steps], [state, trav, trav_note], api_name="traverse", **FREE
    )
    if tab is not None:
        tab.select(
            on_open,
            [state, n, temperature, seed, label, span, steps],
            [state, dimension, grid, trav, trav_note],
            api_visibility="private",
            concurrency_limit=None,
        )

    # Endpoints for scripts (gradio_client); the Latent space and Interpolate tabs add their views.
    with gr.Group(visible=False):
        # Defaults that work as they are for any 2-D model (the default one): the API advertises them.
        z_in = gr.Textbox("[-1.5, 0.0]", label="z")
        z1_in = gr.Textbox("[1.5, 0.0]", label="z1")
        steps_in = gr.Number(8, precision=0, label="Steps")
        method_in = gr.Textbox("linear")
        # 0 decodes as "no label" does: an unconditional model ignores it, a conditional one uses class 0.
        label_in = gr.Number(0, precision=0, label="Class label")
        image_out = gr.Image(format="png")
        info_out = gr.JSON()
        decode_btn = gr.Button()
        interp_btn = gr.Button()
        info_btn = gr.Button()
    decode_btn.click(on_decode, [state, z_in, label_in], [state, image_out], api_name="decode", **FREE)
    interp_in = [state, z_in, z1_in, steps_in, method_in]
    interp_btn.click(on_interpolate, interp_in, [state, image_out], api_name="interpolate", **FREE)
    info_btn.click(on_model_info, [state], [state, info_out], api_name="model_info", **FREE)
