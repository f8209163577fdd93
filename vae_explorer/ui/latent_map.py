"""The latent map shared by the Latent space tab's views: a gr.HTML canvas whose JavaScript draws
the test set's μ coloured by class, the posteriors q(z|x) as ellipses, the prior's 1σ and 2σ
circles, and one chosen input's posterior with its draws z = μ + σ ⊙ ε; a click sends its data
coordinates back (gr.Plot has no click event in Gradio 6). The JSON value is built here."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np

from ..generate import sprite_sheet
from ..latent import PROJECTIONS, ellipse_axes, embed, map_extent, posterior_covariance_2d, prior_centre
from .common import Refused, as_choice, guard
from .palette import CLASS_COLOURS
from .truth_layer import NOTE as TRUTH_NOTE
from .truth_layer import shows_truth, truth_layer

MAX_POINTS = 5000
SPRITE_COLS = 50  # test images per row of the hover-thumbnail sheet
# The sheets are files the browser fetches once per data set (and caches), named by the hash of
# their pixels; only this folder is served, and it holds nothing but those sheets.
SPRITE_DIR = Path(tempfile.gettempdir()) / "vae-explorer-sprites"
SPRITE_DIR.mkdir(exist_ok=True)
gr.set_static_paths([SPRITE_DIR])
_sprites: dict[tuple, dict] = {}
_sprites_lock = threading.Lock()
MAP_PX = 600
SAMPLE_ELLIPSES = 150  # posteriors drawn at once by the toggle: enough to see them cover the prior
TSNE_NOTE = (
    "t-SNE is not a linear map of z, so a posterior N(μ, σ²) has no ellipse on it: "
    "choose identity or pca to see q(z|x)."
)

MAP_HTML = """
<div class="vx-map">
  <canvas width="${MAP_PX}" height="${MAP_PX}"
          style="width:100%;max-width:${MAP_PX}px;cursor:crosshair"></canvas>
  <div class="vx-tip"><div class="vx-thumb"></div><div class="vx-tip-text"></div></div>
  <div class="vx-legend"></div>
  <div class="vx-map-note"></div>
</div>
""".replace("${MAP_PX}", str(MAP_PX))

MAP_CSS = """
.vx-map { position: relative; }
.vx-tip { position: absolute; pointer-events: none; background: #111827; color: white; font-size: 13px;
          padding: 4px 6px; border-radius: 4px; display: none; z-index: 5; }
.vx-thumb { display: none; image-rendering: pixelated; background-repeat: no-repeat; margin-bottom: 3px; }
.vx-legend { font-size: 13px; display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 4px; }
.vx-legend span::before { content: ""; display: inline-block; width: 9px; height: 9px;
                          border-radius: 50%; margin-right: 4px; background: var(--c); }
.vx-map-note { font-size: 12px; color: #6b7280; margin-top: 2px; }
"""

# The ellipse toggle only changes the drawing, so it stays in the browser: a class on <body>.
TOGGLE_JS = """(on) => { document.body.classList.toggle('vx-ellipses', !!on);
  window.dispatchEvent(new Event('vx-map-redraw')); return on; }"""

# Draws the map from the JSON value and sends a click's data coordinates to Python. It runs in
# the browser as gr.HTML's js_on_load, with element, props, trigger and watch in scope.
MAP_JS = Path(__file__).with_name("latent_map.js").read_text(encoding="utf-8")


def check_method(ws, method) -> str:
    method = as_choice(method, "Projection", PROJECTIONS)
    if method == "identity" and ws.model.latent_dim != 2:
        raise Refused(
            f"The identity map needs a 2-D latent; this model has {ws.model.latent_dim}. Choose pca or tsne."
        )
    return method


def make_focus(ws, title: str, mu, logvar, z=None, trail=None, x=None, label=None) -> dict:
    """One input's posterior (and its draws) in latent units, kept in the session's focus State
    and drawn on every map of the same model version whatever the projection; with the input
    itself (x: its pixels, label: the class it was encoded with) for the true posterior."""
    return {
        "version": ws.version,
        "title": title,
        "x": None if x is None else np.round(np.asarray(x, dtype=np.float64).ravel(), 5).tolist(),
        "label": None if label is None else int(label),
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
        logvar = ws.test_posteriors(n).q.logvar
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
            "truth": None,
        }
        if shows_truth(ws, proj.method):
            truth = truth_layer(ws, focus, map_extent(proj), where[0], axes)
            out["focus"]["truth"] = truth
            if truth:
                out["note"] = TRUTH_NOTE.format(log_px=truth["log_px"])
    return out


def sprite(data, n: int) -> dict:
    """The first n test images of ``data`` as one PNG sheet for the map's hover thumbnails:
    where the browser gets it and how it is tiled (point i of the map is tile i)."""
    x = data.x_test[:n]
    key = (data.name, len(x), x.data_ptr())
    with _sprites_lock:
        if key in _sprites:
            return _sprites[key]
    from PIL import Image

    sheet = sprite_sheet(x, SPRITE_COLS)
    path = SPRITE_DIR / f"{hashlib.sha256(sheet.tobytes()).hexdigest()[:20]}.png"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        Image.fromarray(sheet).save(tmp, format="PNG", optimize=True)
        os.replace(tmp, path)  # whole or absent: a browser never gets half a sheet
    _, _, h, w = x.shape
    info = {"url": f"gradio_api/file={path}", "cols": SPRITE_COLS, "h": int(h), "w": int(w), "n": len(x)}
    with _sprites_lock:
        if len(_sprites) > 32:
            _sprites.clear()
        _sprites[key] = info
    return info


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
            "colors": list(CLASS_COLOURS),
            "sprite": sprite(ws.data, len(coords)),
            **_layers(ws, proj, n, focus),
        }
    )
