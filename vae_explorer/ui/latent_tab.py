"""The Latent space tab: the test set's posterior means on a 2-D map, coloured by class.
Click anywhere — on a point or between points — and the decoder's output for that place
appears beside the map. The map is a gr.HTML canvas whose JavaScript sends the clicked data
coordinates (gr.Plot has no click event in Gradio 6); they are checked like any other input."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import torch

from ..latent import PROJECTIONS, bounds, default_projection, embed, grid_points
from .common import as_choice, as_float, as_int, display, guard, workspace

MAX_POINTS = 2000
MAP_PX = 480

MAP_HTML = """
<div class="vx-map">
  <canvas width="${MAP_PX}" height="${MAP_PX}"
          style="width:100%;max-width:${MAP_PX}px;cursor:crosshair"></canvas>
  <div class="vx-tip"></div>
  <div class="vx-legend"></div>
</div>
""".replace("${MAP_PX}", str(MAP_PX))

MAP_CSS = """
.vx-map { position: relative; }
.vx-tip { position: absolute; pointer-events: none; background: #111827; color: white; font-size: 12px;
          padding: 2px 6px; border-radius: 4px; display: none; }
.vx-legend { font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 4px; }
.vx-legend span::before { content: ""; display: inline-block; width: 9px; height: 9px;
                          border-radius: 50%; margin-right: 4px; background: var(--c); }
"""

# Draws the points from the JSON value; a click sends its data coordinates to Python.
MAP_JS = """
// The template may be re-rendered when the value changes: look the nodes up each time.
const $ = (sel) => element.querySelector(sel);
const COLORS = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f',
                '#bcbd22','#17becf'];
const PAD = 28;
let data = null, localMarker = null;
function parse() { try { data = JSON.parse(props.value || 'null'); } catch (e) { data = null; } }
function size() { const c = $('canvas'); return [c.width - 2 * PAD, c.height - 2 * PAD]; }
function toPx(x, y) {
  const [x0, x1, y0, y1] = data.bounds, [W, H] = size();
  return [PAD + (x - x0) / (x1 - x0) * W, PAD + (y1 - y) / (y1 - y0) * H];
}
function toData(px, py) {
  const [x0, x1, y0, y1] = data.bounds, [W, H] = size();
  return [x0 + (px - PAD) / W * (x1 - x0), y1 - (py - PAD) / H * (y1 - y0)];
}
function cross(ctx, x, y, color) {
  const [px, py] = toPx(x, y);
  ctx.strokeStyle = color; ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(px - 8, py); ctx.lineTo(px + 8, py); ctx.moveTo(px, py - 8); ctx.lineTo(px, py + 8);
  ctx.stroke(); ctx.lineWidth = 1;
}
function draw() {
  const canvas = $('canvas'), ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!data) return;
  const [W, H] = size();
  ctx.strokeStyle = '#d1d5db'; ctx.strokeRect(PAD, PAD, W, H);
  ctx.fillStyle = '#6b7280'; ctx.font = '11px sans-serif';
  ctx.fillText(data.xlabel, PAD + W / 2 - 10, canvas.height - 8);
  ctx.save(); ctx.translate(11, PAD + H / 2 + 10); ctx.rotate(-Math.PI / 2);
  ctx.fillText(data.ylabel, 0, 0); ctx.restore();
  ctx.globalAlpha = 0.75;
  for (const [x, y, c] of data.points) {
    const [px, py] = toPx(x, y);
    ctx.fillStyle = COLORS[c % COLORS.length];
    ctx.beginPath(); ctx.arc(px, py, 3, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.globalAlpha = 1;
  const m = localMarker || data.marker;
  if (m) cross(ctx, m[0], m[1], '#111827');
  const legend = $('.vx-legend');
  legend.replaceChildren(...data.classes.map((n, i) => {
    const s = document.createElement('span');
    s.style.setProperty('--c', COLORS[i % COLORS.length]); s.textContent = n; return s;
  }));
}
function eventPx(ev) {
  const canvas = $('canvas'), r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}
element.addEventListener('click', (ev) => {
  if (!data || ev.target.tagName !== 'CANVAS') return;
  const [x, y] = toData(...eventPx(ev));
  localMarker = [x, y]; draw();
  trigger('click', {x: x, y: y});
});
element.addEventListener('mousemove', (ev) => {
  const tip = $('.vx-tip');
  if (!data || ev.target.tagName !== 'CANVAS') { tip.style.display = 'none'; return; }
  const [px, py] = eventPx(ev);
  let best = null, bestD = 64;
  for (const [x, y, c] of data.points) {
    const [qx, qy] = toPx(x, y), d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { bestD = d; best = c; }
  }
  if (best === null) { tip.style.display = 'none'; return; }
  const r = $('canvas').getBoundingClientRect();
  tip.textContent = 'class ' + data.classes[best];
  tip.style.left = (ev.clientX - r.left + 12) + 'px'; tip.style.top = (ev.clientY - r.top + 12) + 'px';
  tip.style.display = 'block';
});
element.addEventListener('mouseleave', () => { $('.vx-tip').style.display = 'none'; });
watch('value', () => { parse(); localMarker = null; draw(); });
parse(); draw();
"""


def _method(ws, method) -> str:
    method = as_choice(method, "Projection", PROJECTIONS)
    if method == "identity" and ws.model.latent_dim != 2:
        raise gr.Error(
            f"The identity map needs a 2-D latent; this model has {ws.model.latent_dim}. Choose pca or tsne."
        )
    return method


def map_value(ws, method: str, n: int, marker: tuple[float, float] | None = None) -> str:
    """The map's JSON: points [x, y, class], class names, the visible plane, the marker."""
    proj, y = guard(lambda: ws.projection(method, n))
    coords = np.round(proj.coords.astype(np.float64), 4)
    labels = y.numpy().tolist() if ws.data.has_labels else [0] * len(coords)
    axis = {"identity": ("z₁", "z₂"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}[method]
    return json.dumps(
        {
            "points": [[x, yy, c] for (x, yy), c in zip(coords.tolist(), labels, strict=True)],
            "classes": ws.data.class_names,
            "bounds": bounds(proj.coords),
            "marker": list(marker) if marker else None,
            "xlabel": axis[0],
            "ylabel": axis[1],
        }
    )


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


def on_show(ws, method, n):
    ws = workspace(ws)
    method = default_projection(ws.model.latent_dim) if method is None else method
    if method == "identity" and ws.model.latent_dim != 2:
        method = "pca"
    n = as_int(n, "Points", 10, MAX_POINTS)
    return ws, gr.update(value=method), map_value(ws, method, n)


def on_click(ws, method, n, evt: gr.EventData):
    ws = workspace(ws)
    method, n = _method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    # The payload comes from the browser, so it may be anything: only a dict's x and y count.
    data = getattr(evt, "_data", None)
    data = data if isinstance(data, dict) else {}
    x, y = data.get("x"), data.get("y")
    image, text = decode_at(ws, method, n, x, y)
    return ws, image, text


def on_decode_point(ws, x, y, method, n):
    """Decode the map point (x, y) of the given projection (what a click on the map does)."""
    ws = workspace(ws)
    method, n = _method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    image, text = decode_at(ws, method, n, x, y)
    return ws, image, text


def on_encode(ws, method, n, file):
    """Encode an uploaded image: its μ is marked on the map, its reconstruction shown."""
    ws = workspace(ws)
    if not file:
        return ws, gr.skip(), gr.skip(), gr.skip()
    method, n = _method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    path = file if isinstance(file, str) else getattr(file, "name", None)
    x, mu, recon = guard(lambda: ws.encode_image(path))
    proj, _ = guard(lambda: ws.projection(method, n))
    (px, py) = embed(proj, mu[None])[0].tolist()
    label = 0 if ws.model.config.conditional else None  # encode_image encodes with class 0
    ws.clicks = [*ws.clicks[-1:], (mu.astype(np.float32), label)]
    text = "Your image (left) and its reconstruction; μ = [" + ", ".join(f"{v:.3f}" for v in mu) + "]"
    pair = display(torch.cat([x, recon]), nrow=2, px=256)
    return ws, map_value(ws, method, n, marker=(px, py)), pair, text


def on_manifold(ws, method, n, resolution):
    """Decodes of an evenly spaced grid over the visible plane (the decoded manifold)."""
    ws = workspace(ws)
    method, n = _method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    k = as_int(resolution, "Grid size", 2, 30)
    proj, labels = guard(lambda: ws.projection(method, n))
    pts = grid_points(bounds(proj.coords), k)
    near = _nearest_labels(ws, proj, labels, pts)  # conditional: each cell in its region's class
    y = None if near is None else torch.from_numpy(near)
    z = proj.to_latent(pts)
    return ws, display(guard(lambda: ws.decode(z, y)), nrow=k, px=480)


def build(state: gr.State, tab: gr.Tab) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            latent_map = gr.HTML(
                value=None,
                html_template=MAP_HTML,
                css_template=MAP_CSS,
                js_on_load=MAP_JS,
                elem_id="latent-map",
            )
        with gr.Column(scale=2):
            decoded = gr.Image(
                label="Decoded at the clicked place",
                elem_id="decoded-image",
                interactive=False,
                format="png",
                height=280,
            )
            z_text = gr.Markdown("*Click anywhere on the map.*", elem_id="decoded-z")
            method = gr.Radio(
                list(PROJECTIONS),
                value=None,
                label="Projection",
                elem_id="projection-select",
                info="identity: the 2-D latent itself; pca: exact plane; tsne: neighbours",
            )
            n = gr.Slider(
                10, MAX_POINTS, value=MAX_POINTS, step=10, label="Points", info="test images encoded to μ"
            )
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
        [state, method, n, upload],
        [state, latent_map, decoded, z_text],
        api_name="encode_image",
        concurrency_limit=None,
    )
    manifold = gr.Image(label="Decoded manifold", elem_id="manifold-grid", interactive=False, format="png")

    shown = {"concurrency_limit": None, "show_progress": "minimal"}
    tab.select(on_show, [state, method, n], [state, method, latent_map], api_visibility="private", **shown)
    method.input(on_show, [state, method, n], [state, method, latent_map], api_name="latent_map", **shown)
    n.release(on_show, [state, method, n], [state, method, latent_map], api_visibility="private", **shown)
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
        x_in, y_in = gr.Number(0.0), gr.Number(0.0)
        point_btn = gr.Button()
    point_btn.click(
        on_decode_point,
        [state, x_in, y_in, method, n],
        [state, decoded, z_text],
        api_name="decode_point",
        concurrency_limit=None,
    )
