"""The Interpolate tab: two endpoints (test images picked by class and index, or the last two
places clicked on the latent map), a slider t that decodes the frame at t as it moves, and a
strip of K frames along the whole path, linear or spherical (slerp)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from ..generate import interpolate, slerp
from .common import as_choice, as_float, as_int, display, guard, workspace

MAX_IN_CLASS = 100
SOURCES = ("test images", "last two map clicks")


def _pick(ws, cls, index) -> tuple[torch.Tensor, int, np.ndarray]:
    names = ws.data.class_names
    cls = as_choice(cls, "Class", names)
    i = as_int(index, "Index", 0, MAX_IN_CLASS - 1)
    indices = ws.class_indices(names.index(cls), MAX_IN_CLASS)
    if i >= len(indices):
        raise gr.Error(f"The test set has only {len(indices)} images of class {cls}.")
    return guard(lambda: ws.test_image(indices[i]))


def endpoints(ws, source, cls_a, idx_a, cls_b, idx_b) -> tuple[np.ndarray, np.ndarray, int | None, list]:
    """(z0, z1, the label held for a conditional model, [thumbnail A, thumbnail B])."""
    source = as_choice(source, "Endpoints", SOURCES)
    if source == "last two map clicks":
        if len(ws.clicks) < 2:
            raise gr.Error("Click two places on the Latent space map first.")
        z0, z1 = ws.clicks[-2], ws.clicks[-1]
        pair = guard(lambda: ws.decode(np.stack([z0, z1])))
        thumbs = [display(pair[:1], nrow=1, px=96), display(pair[1:], nrow=1, px=96)]
        return z0, z1, None, thumbs
    xa, ya, za = _pick(ws, cls_a, idx_a)
    xb, _, zb = _pick(ws, cls_b, idx_b)
    return za, zb, ya, [display(xa, nrow=1, px=96), display(xb, nrow=1, px=96)]


def _path(z0, z1, k: int, method: str) -> np.ndarray:
    return interpolate(torch.from_numpy(z0), torch.from_numpy(z1), k, method).numpy()


def on_strip(ws, source, cls_a, idx_a, cls_b, idx_b, method, frames, t):
    """Thumbnails of the endpoints, the strip of K frames, and the frame at t."""
    ws = workspace(ws)
    method = as_choice(method, "Method", ("linear", "slerp"))
    k = as_int(frames, "Frames", 2, 16)
    tt = as_float(t, "t", 0.0, 1.0)
    z0, z1, label, thumbs = endpoints(ws, source, cls_a, idx_a, cls_b, idx_b)
    strip = display(guard(lambda: ws.decode(_path(z0, z1, k, method), label)), nrow=k, px=96 * k)
    frame = _frame(ws, z0, z1, label, method, tt)
    return ws, *thumbs, strip, frame


def _frame(ws, z0, z1, label, method, t: float) -> np.ndarray:
    a, b = torch.from_numpy(z0), torch.from_numpy(z1)
    z = torch.lerp(a, b, t) if method == "linear" else slerp(a, b, torch.tensor([t]))[0]
    return display(guard(lambda: ws.decode(z.numpy()[None], label)), nrow=1, px=256)


def on_frame(ws, source, cls_a, idx_a, cls_b, idx_b, method, t):
    """The decoded frame at t ∈ [0, 1] (what the slider shows)."""
    ws = workspace(ws)
    method = as_choice(method, "Method", ("linear", "slerp"))
    tt = as_float(t, "t", 0.0, 1.0)
    z0, z1, label, _ = endpoints(ws, source, cls_a, idx_a, cls_b, idx_b)
    return ws, _frame(ws, z0, z1, label, method, tt)


def on_show(ws):
    ws = workspace(ws)
    names = ws.data.class_names
    second = names[1] if len(names) > 1 else names[0]
    return ws, gr.update(choices=names, value=names[0]), gr.update(choices=names, value=second)


def build(state: gr.State, tab: gr.Tab) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            source = gr.Radio(
                list(SOURCES),
                value=SOURCES[0],
                label="Endpoints",
                info="pick test images, or use two places clicked on the map",
            )
            with gr.Row():
                cls_a = gr.Dropdown(["0"], value="0", label="A: class", allow_custom_value=True)
                idx_a = gr.Slider(0, MAX_IN_CLASS - 1, value=0, step=1, label="A: index in class")
            with gr.Row():
                cls_b = gr.Dropdown(["1"], value="1", label="B: class", allow_custom_value=True)
                idx_b = gr.Slider(0, MAX_IN_CLASS - 1, value=0, step=1, label="B: index in class")
            with gr.Row():
                thumb_a = gr.Image(label="A", interactive=False, format="png", height=110)
                thumb_b = gr.Image(label="B", interactive=False, format="png", height=110)
            method = gr.Radio(
                ["linear", "slerp"], value="linear", label="Path", info="slerp keeps |z| typical of the prior"
            )
            frames = gr.Slider(2, 16, value=10, step=1, label="Frames in the strip")
        with gr.Column(scale=2):
            frame = gr.Image(
                label="Frame at t", elem_id="interp-frame", interactive=False, format="png", height=280
            )
            t = gr.Slider(
                0.0,
                1.0,
                value=0.5,
                step=0.01,
                label="t",
                elem_id="interp-slider",
                info="0 = A, 1 = B; the frame follows as you drag",
            )
            strip = gr.Image(
                label="The whole path, A → B",
                elem_id="interp-strip",
                interactive=False,
                format="png",
                height=140,
            )
    ends = [source, cls_a, idx_a, cls_b, idx_b]
    strip_io = ([state, *ends, method, frames, t], [state, thumb_a, thumb_b, strip, frame])
    fast = {"concurrency_limit": None, "show_progress": "hidden"}
    tab.select(on_show, [state], [state, cls_a, cls_b], api_visibility="private", **fast).then(
        on_strip, *strip_io, api_visibility="private", **fast
    )
    for comp in (source, cls_a, cls_b, method, frames):
        comp.input(on_strip, *strip_io, api_visibility="private", trigger_mode="always_last", **fast)
    for comp in (idx_a, idx_b):
        comp.release(on_strip, *strip_io, api_visibility="private", **fast)
    gr.Button("Interpolate", elem_id="interp-button").click(
        on_strip, *strip_io, api_name="interp_strip", **fast
    )
    t.input(
        on_frame,
        [state, *ends, method, t],
        [state, frame],
        api_name="interp_frame",
        trigger_mode="always_last",
        **fast,
    )
