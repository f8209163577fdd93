"""The Latent space tab: the test set's posterior means on a 2-D map, coloured by class.
Click anywhere — on a point or between points — and the decoder's output for that place
appears beside the map. The map (latent_map) is a gr.HTML canvas whose JavaScript sends the
clicked data coordinates; they are checked like any other input. Beside the map, two more
views: the reparameterization step by step (posterior_view) and a drawn input (sketch_view)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from ..latent import PROJECTIONS, default_projection, embed, grid_points, map_extent, prior_centre
from . import posterior_view, sketch_view
from .common import BIG_PX, as_float, as_int, display, guard, remember, workspace
from .latent_map import MAP_CSS, MAP_HTML, MAP_JS, MAX_POINTS, check_method, map_value


def decode_at(ws, clicks, method: str, n: int, x, y):
    """(image, z text, clicks) for a point of the map; the point is untrusted input."""
    xf, yf = as_float(x, "x", -1e6, 1e6), as_float(y, "y", -1e6, 1e6)
    out = guard(lambda: ws.decode_at(method, n, np.array([[xf, yf]])))
    label = None if out.labels is None else int(out.labels[0])
    image = display(out.images, nrow=1, tile=BIG_PX)
    text = "z = [" + ", ".join(f"{v:.3f}" for v in out.z[0]) + "]"
    if label is not None:
        text += f", decoded as class {ws.data.class_names[label]} (the nearest point's)"
    return image, text, remember(clicks, ws, out.z[0], label)  # Interpolate runs between the last two


def on_show(ws, method, n, focus=None):
    ws = workspace(ws)
    method = default_projection(ws.model.latent_dim) if method is None else method
    if method == "identity" and ws.model.latent_dim != 2:
        method = "pca"
    n = as_int(n, "Points", 10, MAX_POINTS)
    return ws, gr.update(value=method), map_value(ws, method, n, focus=focus)


def on_first_decode(ws, clicks, method, n, shown):
    """Opening the tab: until the first click, the decoder's output at the prior's centre, so the
    view beside the map is never empty (a click anywhere replaces it)."""
    if shown is not None:
        return ws, gr.skip(), gr.skip(), clicks
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    proj, _ = guard(lambda: ws.projection(method, n))
    centre = prior_centre(proj)
    (x, y) = centre if centre is not None else proj.coords.mean(axis=0)
    image, text, clicks = decode_at(ws, clicks, method, n, x, y)
    return ws, image, text + " — the prior's centre. *Click anywhere on the map.*", clicks


def on_click(ws, clicks, method, n, evt: gr.EventData):
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    # The payload comes from the browser, so it may be anything: only a dict's x and y count.
    data = getattr(evt, "_data", None)
    data = data if isinstance(data, dict) else {}
    x, y = data.get("x"), data.get("y")
    image, text, clicks = decode_at(ws, clicks, method, n, x, y)
    return ws, image, text, clicks


def on_decode_point(ws, clicks, x, y, method, n):
    """Decode the map point (x, y) of the given projection (what a click on the map does)."""
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    image, text, clicks = decode_at(ws, clicks, method, n, x, y)
    return ws, image, text, clicks


def on_encode(ws, clicks, method, n, file, focus=None):
    """Encode an uploaded image: its μ is marked on the map, its reconstruction shown."""
    ws = workspace(ws)
    if not file:
        return ws, gr.skip(), gr.skip(), gr.skip(), clicks
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    path = file if isinstance(file, str) else getattr(file, "name", None)
    enc = guard(lambda: ws.encode_image(path))
    mu = enc.q.mean[0].numpy()
    proj, _ = guard(lambda: ws.projection(method, n))
    (px, py) = embed(proj, mu[None])[0].tolist()
    label = 0 if ws.model.config.conditional else None  # encode_image encodes with class 0
    text = "Your image (left) and its reconstruction; μ = [" + ", ".join(f"{v:.3f}" for v in mu) + "]"
    pair = display(torch.cat([enc.x, enc.recon]), nrow=2)
    marked = map_value(ws, method, n, marker=(px, py), focus=focus)
    return ws, marked, pair, text, remember(clicks, ws, mu, label)


def on_manifold(ws, method, n, resolution):
    """Decodes of an evenly spaced grid over the visible plane (the decoded manifold); a
    conditional model decodes each cell with its region's class."""
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    k = as_int(resolution, "Grid size", 2, 30)
    proj, _ = guard(lambda: ws.projection(method, n))
    out = guard(lambda: ws.decode_at(method, n, grid_points(map_extent(proj), k)))  # the visible plane
    return ws, display(out.images, nrow=k)


def build(state: gr.State, clicks: gr.State, tab: gr.Tab) -> None:
    """The tab inside the caller's gr.Tab; ``clicks``: the session's remembered map places."""
    focus = gr.State(None)  # the input whose posterior the map shows (posterior_view, sketch_view)
    # Made first, shown under the map: the views beside it take them as inputs.
    method = gr.Radio(
        list(PROJECTIONS),
        value="identity",  # the default model's latent is 2-D; opening the tab picks per model
        label="Projection",
        elem_id="projection-select",
        info="identity: the 2-D latent itself; pca: exact plane; tsne: neighbours",
        render=False,
    )
    points_info = "test images encoded to μ"
    n = gr.Slider(10, MAX_POINTS, value=MAX_POINTS, step=10, label="Points", info=points_info, render=False)
    with gr.Row():
        with gr.Column(scale=1):
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
        with gr.Column(scale=1), gr.Tabs():
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
                posterior_view.build(state, clicks, focus, latent_map, method, n, reparam_tab)
            with gr.Tab("Draw an input", id="sketch-view"):
                sketch_view.build(state, clicks, focus, latent_map, method, n)
    with gr.Row():
        resolution = gr.Slider(
            2, 30, value=12, step=1, label="Grid size", info="decodes per side over the visible plane"
        )
        manifold_btn = gr.Button("Decode the plane", elem_id="manifold-button")
    with gr.Row():
        # A plain file input: the core opens the file defensively and explains what is wrong,
        # where gr.Image would fail on a bad file with no message.
        upload = gr.File(label="Encode my image", file_types=["image"], elem_id="encode-upload", height=140)
        gr.Markdown(
            "Any common image format, made grey and light on dark like the data set; its μ is "
            "marked with a cross on the map."
        )
    upload.upload(
        on_encode,
        [state, clicks, method, n, upload, focus],
        [state, latent_map, decoded, z_text, clicks],
        api_name="encode_image",
        concurrency_limit=None,
    )
    manifold = gr.Image(label="Decoded manifold", elem_id="manifold-grid", interactive=False, format="png")

    shown = {"concurrency_limit": None, "show_progress": "minimal"}
    show = ([state, method, n, focus], [state, method, latent_map])
    tab.select(on_show, *show, api_visibility="private", **shown).then(
        on_first_decode,
        [state, clicks, method, n, decoded],
        [state, decoded, z_text, clicks],
        api_visibility="private",
        **shown,
    )
    method.input(on_show, *show, api_name="latent_map", **shown)
    n.release(on_show, *show, api_visibility="private", **shown)
    latent_map.click(
        on_click,
        [state, clicks, method, n],
        [state, decoded, z_text, clicks],
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
        [state, clicks, x_in, y_in, method, n],
        [state, decoded, z_text, clicks],
        api_name="decode_point",
        concurrency_limit=None,
    )
