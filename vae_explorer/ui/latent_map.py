"""The latent map shared by the Latent space tab's views: a gr.HTML canvas whose JavaScript draws
the test set's μ coloured by class, the posteriors q(z|x) as ellipses, the prior's 1σ and 2σ
circles, and one chosen input's posterior with its draws z = μ + σ ⊙ ε; a click sends its data
coordinates back (gr.Plot has no click event in Gradio 6). The JSON value is built here."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np

from ..latent import PROJECTIONS, ellipse_axes, embed, map_extent, posterior_covariance_2d, prior_centre
from .common import as_choice, guard

MAX_POINTS = 2000
MAP_PX = 480
SAMPLE_ELLIPSES = 150  # posteriors drawn at once by the toggle: enough to see them cover the prior
TSNE_NOTE = (
    "t-SNE is not a linear map of z, so a posterior N(μ, σ²) has no ellipse on it: "
    "choose identity or pca to see q(z|x)."
)

MAP_HTML = """
<div class="vx-map">
  <canvas width="${MAP_PX}" height="${MAP_PX}"
          style="width:100%;max-width:${MAP_PX}px;cursor:crosshair"></canvas>
  <div class="vx-tip"></div>
  <div class="vx-legend"></div>
  <div class="vx-map-note"></div>
</div>
""".replace("${MAP_PX}", str(MAP_PX))

MAP_CSS = """
.vx-map { position: relative; }
.vx-tip { position: absolute; pointer-events: none; background: #111827; color: white; font-size: 12px;
          padding: 2px 6px; border-radius: 4px; display: none; }
.vx-legend { font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 4px; }
.vx-legend span::before { content: ""; display: inline-block; width: 9px; height: 9px;
                          border-radius: 50%; margin-right: 4px; background: var(--c); }
.vx-map-note { font-size: 12px; color: #6b7280; margin-top: 2px; }
"""

# The ellipse toggle only changes the drawing, so it stays in the browser: a class on <body>.
TOGGLE_JS = """(on) => { document.body.classList.toggle('vx-ellipses', !!on);
  window.dispatchEvent(new Event('vx-map-redraw')); return on; }"""

# Draws the map from the JSON value; a click sends its data coordinates to Python.
MAP_JS = """
// The template may be re-rendered when the value changes: look the nodes up each time.
const $ = (sel) => element.querySelector(sel);
const COLORS = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f',
                '#bcbd22','#17becf'];
const PAD = 28, FOCUS = '#4338ca';
let data = null, localMarker = null, hover = -1, shownZ = null, focusKey = '';
function parse() { try { data = JSON.parse(props.value || 'null'); } catch (e) { data = null; } }
function size() { const c = $('canvas'); return [c.width - 2 * PAD, c.height - 2 * PAD]; }
// A view puts part of the plane (b = [x0, x1, y0, y1]) on a rectangle of the canvas.
function mainView() { const [W, H] = size(); return {b: data.bounds, x: PAD, y: PAD, w: W, h: H}; }
let view = null;
function toPx(x, y) {
  const v = view || mainView(), [x0, x1, y0, y1] = v.b;
  return [v.x + (x - x0) / (x1 - x0) * v.w, v.y + (y1 - y) / (y1 - y0) * v.h];
}
function toData(px, py) {
  const [x0, x1, y0, y1] = data.bounds, [W, H] = size();
  return [x0 + (px - PAD) / W * (x1 - x0), y1 - (py - PAD) / H * (y1 - y0)];
}
// A k·σ ellipse given in data units (semi-axes a, b; angle th from the x axis, y up).
function ellipse(ctx, c, ax, k) {
  const v = view || mainView(), [x0, x1, y0, y1] = v.b, sx = v.w / (x1 - x0), sy = v.h / (y1 - y0);
  ctx.save(); ctx.setTransform(sx, 0, 0, -sy, v.x - x0 * sx, v.y + y1 * sy);
  ctx.beginPath(); ctx.ellipse(c[0], c[1], k * ax[0] + 1e-9, k * ax[1] + 1e-9, ax[2], 0, 2 * Math.PI);
  ctx.restore();
}
function dot(ctx, p, r, color) {
  const [px, py] = toPx(p[0], p[1]);
  ctx.fillStyle = color; ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill();
}
function label(ctx, p, text, dx, dy) {
  const [px, py] = toPx(p[0], p[1]);
  ctx.fillStyle = '#111827'; ctx.font = 'bold 12px sans-serif'; ctx.fillText(text, px + dx, py + dy);
}
function cross(ctx, x, y, color) {
  const [px, py] = toPx(x, y);
  ctx.strokeStyle = color; ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(px - 8, py); ctx.lineTo(px + 8, py); ctx.moveTo(px, py - 8); ctx.lineTo(px, py + 8);
  ctx.stroke(); ctx.lineWidth = 1;
}
function drawFocus(ctx, f, big) {
  if (f.axes) for (const k of [1, 2]) {
    ellipse(ctx, f.mu, f.axes, k); ctx.fillStyle = 'rgba(67,56,202,0.07)'; ctx.fill();
    ctx.strokeStyle = FOCUS; ctx.lineWidth = 2; ctx.setLineDash(k === 2 ? [6, 4] : []); ctx.stroke();
  }
  ctx.setLineDash([]); ctx.lineWidth = 1;
  for (const t of f.trail || []) dot(ctx, t, big ? 3 : 2, 'rgba(67,56,202,0.45)');
  dot(ctx, f.mu, 3, '#111827');
  const z = shownZ || f.z;
  if (z) {  // the step σ ⊙ ε from μ to z, then z itself
    const [ax, ay] = toPx(f.mu[0], f.mu[1]), [bx, by] = toPx(z[0], z[1]);
    ctx.strokeStyle = FOCUS; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke(); ctx.lineWidth = 1;
    dot(ctx, z, big ? 6 : 4, FOCUS); dot(ctx, z, big ? 2.5 : 1.5, '#ffffff');
  }
  if (!big) { label(ctx, f.mu, f.title, 8, -8); return; }
  label(ctx, f.mu, 'μ', -14, 14);
  if (z) label(ctx, z, 'z', 8, -6);
}
// The chosen input's posterior magnified in the top right corner: z moving inside its ellipse.
function drawInset(ctx, f) {
  const S = 150, main = mainView(), x = main.x + main.w - S - 1, y = main.y + 1;
  const r = 2.6 * Math.max(f.axes[0], 1e-6), zoom = (main.b[1] - main.b[0]) / main.w / (2 * r / S);
  ctx.fillStyle = '#ffffff'; ctx.fillRect(x, y, S, S + 16);
  ctx.strokeStyle = '#9ca3af'; ctx.strokeRect(x, y, S, S + 16);
  ctx.fillStyle = '#374151'; ctx.font = '11px sans-serif';
  ctx.fillText('q(z|x) magnified ×' + zoom.toFixed(zoom < 10 ? 1 : 0), x + 4, y + S + 12);
  view = {b: [f.mu[0] - r, f.mu[0] + r, f.mu[1] - r, f.mu[1] + r], x: x, y: y, w: S, h: S};
  ctx.save(); ctx.beginPath(); ctx.rect(x, y, S, S); ctx.clip();
  drawFocus(ctx, f, true); ctx.restore();
  view = null;
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
  ctx.save(); ctx.beginPath(); ctx.rect(PAD, PAD, W, H); ctx.clip();
  if (data.prior) for (const k of [1, 2]) {  // N(0, I): circles of radius 1 and 2
    ellipse(ctx, data.prior, [1, 1, 0], k); ctx.strokeStyle = '#6b7280'; ctx.setLineDash([3, 3]);
    ctx.stroke(); ctx.setLineDash([]);
    const [px, py] = toPx(data.prior[0] + k * 0.7071, data.prior[1] + k * 0.7071);
    ctx.fillStyle = '#6b7280'; ctx.fillText(k + 'σ prior', px + 3, py - 3);
  }
  const E = data.ellipses;
  if (E && document.body.classList.contains('vx-ellipses')) for (const i of data.sample) {
    const [x, y, c] = data.points[i], col = COLORS[c % COLORS.length];
    ellipse(ctx, [x, y], E[i], 1); ctx.globalAlpha = 0.06; ctx.fillStyle = col; ctx.fill();
    ctx.globalAlpha = 0.45; ctx.strokeStyle = col; ctx.stroke(); ctx.globalAlpha = 1;
  }
  ctx.globalAlpha = data.focus ? 0.4 : 0.75;  // a chosen input stands out
  for (const [x, y, c] of data.points) dot(ctx, [x, y], 3, COLORS[c % COLORS.length]);
  ctx.globalAlpha = 1;
  if (E && hover >= 0 && hover < data.points.length) {
    const [x, y, c] = data.points[hover];
    for (const k of [1, 2]) {
      ellipse(ctx, [x, y], E[hover], k); ctx.strokeStyle = COLORS[c % COLORS.length]; ctx.lineWidth = 2;
      ctx.setLineDash(k === 2 ? [5, 4] : []); ctx.stroke();
    }
    ctx.setLineDash([]); ctx.lineWidth = 1;
  }
  if (data.focus) drawFocus(ctx, data.focus, false);
  ctx.restore();
  if (data.focus && data.focus.axes) drawInset(ctx, data.focus);
  const m = localMarker || data.marker;
  if (m) cross(ctx, m[0], m[1], '#111827');
  const legend = $('.vx-legend');
  legend.replaceChildren(...data.classes.map((n, i) => {
    const s = document.createElement('span');
    s.style.setProperty('--c', COLORS[i % COLORS.length]); s.textContent = n; return s;
  }));
  $('.vx-map-note').textContent = data.note || '';
}
// A new draw of the same input glides from the old z to the new one inside its ellipse.
function moveZ() {
  const f = data && data.focus, key = f ? JSON.stringify(f.mu) : '';
  const to = f && f.z, from = key === focusKey ? shownZ : null;
  focusKey = key; shownZ = to || null;
  if (!from || !to) return;
  const t0 = performance.now();
  const step = (now) => {
    const t = Math.min(1, (now - t0) / 350), e = t * (2 - t);
    shownZ = [from[0] + (to[0] - from[0]) * e, from[1] + (to[1] - from[1]) * e]; draw();
    if (t < 1) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
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
  let best = -1, bestD = 64;
  data.points.forEach(([x, y], i) => {
    const [qx, qy] = toPx(x, y), d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  });
  if (best !== hover) { hover = best; draw(); }
  if (best < 0) { tip.style.display = 'none'; return; }
  const r = $('canvas').getBoundingClientRect();
  tip.textContent = 'class ' + data.classes[data.points[best][2]];
  tip.style.left = (ev.clientX - r.left + 12) + 'px'; tip.style.top = (ev.clientY - r.top + 12) + 'px';
  tip.style.display = 'block';
});
element.addEventListener('mouseleave', () => { $('.vx-tip').style.display = 'none'; hover = -1; draw(); });
window.addEventListener('vx-map-redraw', () => draw());
watch('value', () => { parse(); localMarker = null; hover = -1; moveZ(); draw(); });
parse(); moveZ(); draw();
"""


def check_method(ws, method) -> str:
    method = as_choice(method, "Projection", PROJECTIONS)
    if method == "identity" and ws.model.latent_dim != 2:
        raise gr.Error(
            f"The identity map needs a 2-D latent; this model has {ws.model.latent_dim}. Choose pca or tsne."
        )
    return method


def make_focus(ws, title: str, mu, logvar, z=None, trail=None) -> dict:
    """One input's posterior (and its draws) in latent units, kept in the session's focus State
    and drawn on every map of the same model version whatever the projection."""
    return {
        "version": ws.version,
        "title": title,
        "mu": np.asarray(mu, dtype=np.float64).tolist(),
        "logvar": np.asarray(logvar, dtype=np.float64).tolist(),
        "z": None if z is None else np.asarray(z, dtype=np.float64).tolist(),
        "trail": [] if trail is None else [[float(v) for v in t] for t in trail],
    }


def _round(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 4).tolist()


def _layers(ws, proj, n: int, focus: dict | None) -> dict:
    """The posterior layers of the map's JSON: every point's 1σ ellipse [a, b, angle] (None on
    t-SNE), the indices the toggle draws, the prior's centre, and the focus input in map units."""
    out: dict = {"ellipses": None, "sample": [], "prior": None, "focus": None, "note": ""}
    linear = proj.method != "tsne"
    if linear:
        _, logvar, _ = ws.test_posteriors(n)
        out["ellipses"] = _round(ellipse_axes(guard(lambda: posterior_covariance_2d(proj, logvar))))
        count = len(proj.coords)
        pick = np.random.default_rng(0).choice(count, min(SAMPLE_ELLIPSES, count), replace=False)
        out["sample"] = sorted(int(i) for i in pick)
        out["prior"] = _round(prior_centre(proj))
    else:
        out["note"] = TSNE_NOTE
    if focus and focus.get("version") == ws.version:
        mu = np.asarray(focus["mu"])
        points = [mu] + ([np.asarray(focus["z"])] if focus["z"] is not None else [])
        points += [np.asarray(t) for t in focus["trail"]]
        where = embed(proj, np.stack(points))  # (P, 2): μ, z, then the earlier draws
        axes = None
        if linear:
            axes = _round(ellipse_axes(posterior_covariance_2d(proj, np.asarray(focus["logvar"])[None]))[0])
        has_z = focus["z"] is not None
        out["focus"] = {
            "title": focus["title"],
            "mu": _round(where[0]),
            "axes": axes,
            "z": _round(where[1]) if has_z else None,
            "trail": _round(where[2 if has_z else 1 :]),
        }
    return out


def map_value(
    ws, method: str, n: int, marker: tuple[float, float] | None = None, focus: dict | None = None
) -> str:
    """The map's JSON: points [x, y, class], class names, the visible plane, the marker, and the
    posterior layers (see _layers)."""
    proj, y = guard(lambda: ws.projection(method, n))
    coords = np.round(proj.coords.astype(np.float64), 4)
    labels = y.numpy().tolist() if ws.data.has_labels else [0] * len(coords)
    axis = {"identity": ("z₁", "z₂"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}[method]
    return json.dumps(
        {
            "points": [[x, yy, c] for (x, yy), c in zip(coords.tolist(), labels, strict=True)],
            "classes": ws.data.class_names,
            "bounds": map_extent(proj),
            "marker": list(marker) if marker else None,
            "xlabel": axis[0],
            "ylabel": axis[1],
            **_layers(ws, proj, n, focus),
        }
    )
