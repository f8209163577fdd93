"""The Latent space tab: the test set's posterior means on a 2-D map, coloured by class.
Click anywhere — on a point or between points — and the decoder's output for that place
appears beside the map. The map (latent_map) is a gr.HTML canvas whose JavaScript sends the
clicked data coordinates; they are checked like any other input. Beside the map, two more
views: the reparameterization step by step (posterior_view) and a drawn input (sketch_view)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from ..latent import PROJECTIONS, default_projection, embed, grid_points, map_extent
from . import posterior_view, sketch_view
from .common import as_float, as_int, display, guard, workspace
from .latent_map import MAP_CSS, MAP_HTML, MAP_JS, MAX_POINTS, check_method, map_value


def _nearest_labels(ws, proj, labels, pts: np.ndarray) -> np.ndarray | None:
    """A conditional model needs a class to decode: that of the nearest point on the map
    (the colour the student sees there). None for an unconditional model. (P,)"""
    if not ws.model.config.conditional:
        return None
    d2 = ((pts[:, None, :] - proj.coords[None, :, :]) ** 2).sum(-1)  # (P, N)
    return labels.numpy()[d2.argmin(axis=1)]


def decode_at(ws, method: str, n: int, x, y):
    """(image, z text) for a point of the map; the point is untrusted input."""
    xf, yf = as_float(x, "x", -1e6, 1e6), as_float(y, "y", -1e6, 1e6)
    proj, labels = guard(lambda: ws.projection(method, n))
    pts = np.array([[xf, yf]])
    z = guard(lambda: proj.to_latent(pts))
    near = _nearest_labels(ws, proj, labels, pts)
    label = None if near is None else int(near[0])
    image = display(guard(lambda: ws.decode(z, label)), nrow=1, px=256)
    ws.clicks = [*ws.clicks[-1:], (z[0], label)]  # the Interpolate tab can run between the last two
    text = "z = [" + ", ".join(f"{v:.3f}" for v in z[0]) + "]"
    if label is not None:
        text += f", decoded as class {ws.data.class_names[label]} (the nearest point's)"
    return image, text


def on_show(ws, method, n, focus=None):
    ws = workspace(ws)
    method = default_projection(ws.model.latent_dim) if method is None else method
    if method == "identity" and ws.model.latent_dim != 2:
        method = "pca"
    n = as_int(n, "Points", 10, MAX_POINTS)
    return ws, gr.update(value=method), map_value(ws, method, n, focus=focus)


def on_click(ws, method, n, evt: gr.EventData):
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    # The payload comes from the browser, so it may be anything: only a dict's x and y count.
    data = getattr(evt, "_data", None)
    data = data if isinstance(data, dict) else {}
    x, y = data.get("x"), data.get("y")
    image, text = decode_at(ws, method, n, x, y)
    return ws, image, text


def on_decode_point(ws, x, y, method, n):
    """Decode the map point (x, y) of the given projection (what a click on the map does)."""
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    image, text = decode_at(ws, method, n, x, y)
    return ws, image, text


def on_encode(ws, method, n, file, focus=None):
    """Encode an uploaded image: its μ is marked on the map, its reconstruction shown."""
    ws = workspace(ws)
    if not file:
        return ws, gr.skip(), gr.skip(), gr.skip()
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    path = file if isinstance(file, str) else getattr(file, "name", None)
    x, mu, recon = guard(lambda: ws.encode_image(path))
    proj, _ = guard(lambda: ws.projection(method, n))
    (px, py) = embed(proj, mu[None])[0].tolist()
    label = 0 if ws.model.config.conditional else None  # encode_image encodes with class 0
    ws.clicks = [*ws.clicks[-1:], (mu.astype(np.float32), label)]
    text = "Your image (left) and its reconstruction; μ = [" + ", ".join(f"{v:.3f}" for v in mu) + "]"
    pair = display(torch.cat([x, recon]), nrow=2, px=256)
    return ws, map_value(ws, method, n, marker=(px, py), focus=focus), pair, text


def on_manifold(ws, method, n, resolution):
    """Decodes of an evenly spaced grid over the visible plane (the decoded manifold)."""
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    k = as_int(resolution, "Grid size", 2, 30)
    proj, labels = guard(lambda: ws.projection(method, n))
    pts = grid_points(map_extent(proj), k)  # the map's visible plane
    near = _nearest_labels(ws, proj, labels, pts)  # conditional: each cell in its region's class
    y = None if near is None else torch.from_numpy(near)
    z = proj.to_latent(pts)
    return ws, display(guard(lambda: ws.decode(z, y)), nrow=k, px=480)


def build(state: gr.State, tab: gr.Tab) -> None:
    focus = gr.State(None)  # the input whose posterior the map shows (posterior_view, sketch_view)
    # Made first, shown under the map: the views beside it take them as inputs.
    method = gr.Radio(
        list(PROJECTIONS),
        value=None,
        label="Projection",
        elem_id="projection-select",
        info="identity: the 2-D latent itself; pca: exact plane; tsne: neighbours",
        render=False,
    )
    points_info = "test images encoded to μ"
    n = gr.Slider(10, MAX_POINTS, value=MAX_POINTS, step=10, label="Points", info=points_info, render=False)
    with gr.Row():
        with gr.Column(scale=3):
            latent_map = gr.HTML(
                value=None,
                html_template=MAP_HTML,
                css_template=MAP_CSS,
                js_on_load=MAP_JS,
                elem_id="latent-map",
            )
            posterior_view.build_toggle()
            with gr.Row():
                method.render()
                n.render()
        with gr.Column(scale=2), gr.Tabs():
            with gr.Tab("Decode a click", id="click-view"):
                decoded = gr.Image(
                    label="Decoded at the clicked place",
                    elem_id="decoded-image",
                    interactive=False,
                    format="png",
                    height=280,
                )
                z_text = gr.Markdown("*Click anywhere on the map.*", elem_id="decoded-z")
            with gr.Tab("z = μ + σ ⊙ ε", id="reparam-view") as reparam_tab:
                posterior_view.build(state, focus, latent_map, method, n, reparam_tab)
            with gr.Tab("Draw an input", id="sketch-view"):
                sketch_view.build(state, focus, latent_map, method, n)
    with gr.Row():
        resolution = gr.Slider(
            2, 30, value=15, step=1, label="Grid size", info="decodes per side over the visible plane"
        )
        manifold_btn = gr.Button("Decode the plane", elem_id="manifold-button")
    with gr.Row():
        # A plain file input: the core opens the file defensively and explains what is wrong,
        # where gr.Image would fail on a bad file with no message.
        upload = gr.File(label="Encode my image", file_types=["image"], elem_id="encode-upload", height=140)
        gr.Markdown(
            "Any common image format. It is made grey, fitted into the data set's size "
            "keeping its shape, and inverted if it is mostly light (the data sets are light "
            "strokes on dark). Its μ is marked with a cross on the map."
        )
    upload.upload(
        on_encode,
        [state, method, n, upload, focus],
        [state, latent_map, decoded, z_text],
        api_name="encode_image",
        concurrency_limit=None,
    )
    manifold = gr.Image(label="Decoded manifold", elem_id="manifold-grid", interactive=False, format="png")

    shown = {"concurrency_limit": None, "show_progress": "minimal"}
    show = ([state, method, n, focus], [state, method, latent_map])
    tab.select(on_show, *show, api_visibility="private", **shown)
    method.input(on_show, *show, api_name="latent_map", **shown)
    n.release(on_show, *show, api_visibility="private", **shown)
    latent_map.click(
        on_click,
        [state, method, n],
        [state, decoded, z_text],
        api_visibility="private",
        concurrency_limit=None,
        show_progress="hidden",
    )
    manifold_btn.click(
        on_manifold,
        [state, method, n, resolution],
        [state, manifold],
        api_name="manifold",
        concurrency_limit=None,
    )
    with gr.Group(visible=False):
        x_in, y_in = gr.Number(0.0, label="x"), gr.Number(0.0, label="y")
        point_btn = gr.Button()
    point_btn.click(
        on_decode_point,
        [state, x_in, y_in, method, n],
        [state, decoded, z_text],
        api_name="decode_point",
        concurrency_limit=None,
    )
