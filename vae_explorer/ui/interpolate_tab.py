"""The Interpolate tab: two endpoints (test images picked by class and index, or the last two
places clicked on the latent map), a slider t that decodes the frame at t as it moves, and a
strip of K frames along the whole path, linear or spherical (slerp)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from .common import (
    BIG_PX,
    MAX_IN_CLASS,
    Refused,
    as_choice,
    as_float,
    as_int,
    display,
    guard,
    pick_test_image,
    recent,
    workspace,
)

SOURCES = ("test images", "last two map clicks")
LABEL_MODES = ("hold A's", "A to B")


def _pick(ws, cls, index) -> tuple[torch.Tensor, int, np.ndarray]:
    i, _ = pick_test_image(ws, cls, index)
    return guard(lambda: ws.test_image(i))


def endpoints(ws, clicks, source, cls_a, idx_a, cls_b, idx_b) -> tuple[np.ndarray, np.ndarray, tuple, list]:
    """(z0, z1, (label A, label B) or (None, None), [thumbnail A, thumbnail B])."""
    source = as_choice(source, "Endpoints", SOURCES)
    if source == SOURCES[1]:
        places = recent(clicks, ws)
        if len(places) < 2:
            raise Refused("Click two places on the Latent space map (or encode two images) first.")
        (z0, la), (z1, lb) = places[-2], places[-1]
        thumbs = [
            display(guard(lambda: ws.decode(z0, la)), nrow=1),
            display(guard(lambda: ws.decode(z1, lb)), nrow=1),
        ]
        return z0, z1, (la, lb), thumbs
    xa, ya, za = _pick(ws, cls_a, idx_a)
    xb, yb, zb = _pick(ws, cls_b, idx_b)
    return za, zb, (ya, yb), [display(xa, nrow=1), display(xb, nrow=1)]


def _decode_path(ws, z0, z1, labels, mode, method, ts: torch.Tensor) -> torch.Tensor:
    """Decodes along the path at fractions ts; a conditional model holds A's label or blends it
    into B's along t (generate.path_labels)."""
    conditional = ws.model.config.conditional
    ends = labels if conditional else (None, None)
    return guard(lambda: ws.decode_path(z0, z1, ts, method, ends, blend=mode == LABEL_MODES[1]))


def on_strip(ws, clicks, source, cls_a, idx_a, cls_b, idx_b, method, label_mode, frames, t):
    """Thumbnails of the endpoints, the strip of K frames, and the frame at t."""
    ws = workspace(ws)
    method = as_choice(method, "Method", ("linear", "slerp"))
    mode = as_choice(label_mode, "Label", LABEL_MODES)
    k = as_int(frames, "Frames", 2, 16)
    tt = as_float(t, "t", 0.0, 1.0)
    z0, z1, labels, thumbs = endpoints(ws, clicks, source, cls_a, idx_a, cls_b, idx_b)
    strip = _decode_path(ws, z0, z1, labels, mode, method, torch.linspace(0, 1, k))
    frame = _decode_path(ws, z0, z1, labels, mode, method, torch.tensor([tt]))
    return ws, *thumbs, display(strip, nrow=k), display(frame, nrow=1, tile=BIG_PX)


def on_frame(ws, clicks, source, cls_a, idx_a, cls_b, idx_b, method, label_mode, t):
    """The decoded frame at t ∈ [0, 1] (what the slider shows)."""
    ws = workspace(ws)
    method = as_choice(method, "Method", ("linear", "slerp"))
    mode = as_choice(label_mode, "Label", LABEL_MODES)
    tt = as_float(t, "t", 0.0, 1.0)
    z0, z1, labels, _ = endpoints(ws, clicks, source, cls_a, idx_a, cls_b, idx_b)
    frame = _decode_path(ws, z0, z1, labels, mode, method, torch.tensor([tt]))
    return ws, display(frame, nrow=1, tile=BIG_PX)


def on_show(ws):
    ws = workspace(ws)
    names = ws.data.class_names
    second = names[1] if len(names) > 1 else names[0]
    return ws, gr.update(choices=names, value=names[0]), gr.update(choices=names, value=second)


def build(state: gr.State, clicks: gr.State, tab: gr.Tab) -> None:
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
                thumb_a = gr.Image(label="A", interactive=False, format="png")
                thumb_b = gr.Image(label="B", interactive=False, format="png")
            method = gr.Radio(
                ["linear", "slerp"], value="linear", label="Path", info="slerp keeps |z| typical of the prior"
            )
            label_mode = gr.Radio(
                list(LABEL_MODES),
                value=LABEL_MODES[0],
                label="Label (conditional models)",
                info="hold A's class, or blend A's into B's along t",
            )
            frames = gr.Slider(2, 16, value=8, step=1, label="Frames in the strip")
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
                label="The whole path, A → B", elem_id="interp-strip", interactive=False, format="png"
            )
    ends = [source, cls_a, idx_a, cls_b, idx_b]
    strip_in = [state, clicks, *ends, method, label_mode, frames, t]
    strip_io = (strip_in, [state, thumb_a, thumb_b, strip, frame])
    fast = {"concurrency_limit": None, "show_progress": "hidden"}
    tab.select(on_show, [state], [state, cls_a, cls_b], api_visibility="private", **fast).then(
        on_strip, *strip_io, api_visibility="private", **fast
    )
    for comp in (source, cls_a, cls_b, method, label_mode, frames):
        comp.input(on_strip, *strip_io, api_visibility="private", trigger_mode="always_last", **fast)
    for comp in (idx_a, idx_b):
        comp.release(on_strip, *strip_io, api_visibility="private", **fast)
    gr.Button("Interpolate", elem_id="interp-button").click(
        on_strip, *strip_io, api_name="interp_strip", **fast
    )
    t.input(
        on_frame,
        [state, clicks, *ends, method, label_mode, t],
        [state, frame],
        api_name="interp_frame",
        trigger_mode="always_last",
        **fast,
    )
