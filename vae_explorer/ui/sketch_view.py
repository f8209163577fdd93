"""Draw an input: a sketchpad whose drawing is prepared like the data set (images.prepare_drawing:
ink cropped, scaled into the data set's box, centred by mass), encoded, and shown as its
posterior ellipse on the map beside its reconstruction."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from .common import Refused, as_int, display, guard, remember, workspace
from .latent_map import MAX_POINTS, check_method, make_focus, map_value

CANVAS_PX = 280  # the drawing's pixels: 10× a 28×28 image
EMPTY = "The drawing is empty: draw something first."

HOW = """Pick the brush (left of the canvas) and draw with the mouse or a finger: the drawing is
encoded as you draw. It is prepared like the data set's images: the ink is cropped to its
bounding box, scaled keeping its shape into the box the data set's digits fill (20×20 of 28×28
for MNIST-like sets, the whole 8×8 frame for the digits), centred by its centre of mass, light
strokes on dark. Its posterior q(z|x) appears on the map as an ellipse (1σ and 2σ)."""


def _drawing(value) -> np.ndarray:
    """The editor's value → one image array: its composite, else its background, else its top layer."""
    if isinstance(value, dict):
        for key in ("composite", "background"):
            if value.get(key) is not None:
                return value[key]
        layers = [layer for layer in value.get("layers") or [] if layer is not None]
        if layers:
            return layers[-1]
    elif value is not None:
        return value
    raise Refused(EMPTY)


def _fmt(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:.3f}" for v in values[:8].tolist())
    return "[" + shown + (", …]" if len(values) > 8 else "]")


def on_encode_drawing(ws, clicks, focus, method, n, drawing):
    """Encode a drawing: its posterior's ellipse on the map, its prepared image and reconstruction."""
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    array = _drawing(drawing)
    enc = guard(lambda: ws.encode_drawing(array))
    mu, logvar = enc.q.mean[0].numpy(), enc.q.logvar[0].numpy()
    label = 0 if ws.model.config.conditional else None  # encode_drawing encodes with class 0
    focus = make_focus(ws, "your drawing", mu, logvar, x=enc.x.numpy(), label=label)
    pair = display(torch.cat([enc.x, enc.recon]), nrow=2)
    text = (
        f"Your drawing as the model sees it (left) and its reconstruction. "
        f"μ = {_fmt(mu)}, σ = {_fmt(enc.q.std[0].numpy())}"
    )
    marked = map_value(ws, method, n, focus=focus)
    return ws, focus, marked, pair, text, remember(clicks, ws, mu, label)  # Interpolate can use it


def on_sketch_change(ws, clicks, focus, method, n, drawing):
    """The same while drawing, quietly: a cleared or still empty canvas changes nothing."""
    try:
        return on_encode_drawing(ws, clicks, focus, method, n, drawing)
    except gr.Error:
        return (*[gr.skip()] * 5, clicks)


def build(state: gr.State, clicks: gr.State, focus: gr.State, latent_map: gr.HTML, method, n) -> None:
    sketch = gr.Sketchpad(
        label="Draw a digit",
        elem_id="sketchpad",
        type="numpy",
        image_mode="RGBA",
        canvas_size=(CANVAS_PX, CANVAS_PX),
        fixed_canvas=True,
        height=CANVAS_PX + 80,
        brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),  # strokes like the data's
        layers=False,
        transforms=(),
    )
    result = gr.Image(
        label="As the model sees it, and its reconstruction",
        elem_id="sketch-result",
        interactive=False,
        format="png",
    )
    text = gr.Markdown(elem_id="sketch-text")
    gr.Markdown(HOW)
    io = ([state, clicks, focus, method, n, sketch], [state, focus, latent_map, result, text, clicks])
    # The drawing is encoded as it changes. A button would race the editor, which sends a new
    # drawing a moment after the stroke: an early press finds no drawing yet.
    sketch.change(
        on_sketch_change,
        *io,
        api_visibility="private",
        concurrency_limit=None,
        trigger_mode="always_last",
        show_progress="hidden",
    )
    with gr.Group(visible=False):  # the same for scripts, with a clear error for an empty drawing
        api_button = gr.Button()
    api_button.click(on_encode_drawing, *io, api_name="encode_drawing", concurrency_limit=None)
