"""The rate–distortion plane and its β sweep, a section of the "Inside the ELBO" tab.

One button trains the session's model configuration once per β, all at once (sweep.py), and the
models move on the plane of rate R (the KL term) against distortion D (the reconstruction term)
while they train, with lines of equal −ELBO (D + R) and the distortion floor; the Train tab's
run is drawn as a path. Clicking a model's point makes it the session's model, so its map,
samples and traversal can be shown. The plane is a canvas (rd_plane.js), as the latent map is:
gr.Plot has no click event in Gradio 6."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import gradio as gr

from ..sweep import DEFAULT_BETAS, MAX_MODELS, UPDATES_PER_EPOCH
from . import ghost
from .common import TRAIN_CONCURRENCY, Refused, as_float, as_int, guard, workspace

MAX_EPOCHS = 30
SHOWN_RUN_EPOCHS = 10  # the Train run's last epochs that the view makes room for
DEFAULT_EPOCHS = 10
PLANE_PX = (900, 420)
# low β to high β: from the reconstruction's colour to the prior's (one hue per model)
SWEEP_COLOURS = ("#1e3a8a", "#1d4ed8", "#0891b2", "#059669", "#65a30d", "#ca8a04", "#ea580c", "#dc2626",
                 "#be185d", "#7e22ce", "#4b5563", "#111827")  # fmt: skip
PLANE_JS = Path(__file__).with_name("rd_plane.js").read_text(encoding="utf-8")
PLANE_HTML = f"""
<div class="vx-rd">
  <canvas width="{PLANE_PX[0]}" height="{PLANE_PX[1]}" style="width:100%;cursor:pointer"></canvas>
  <div class="vx-rd-note"></div>
</div>
"""
PLANE_CSS = ".vx-rd-note { font-size: 13px; color: #4b5563; margin-top: 2px; }"
HOW = (
    "**The rate–distortion plane.** Each β trades distortion D (the reconstruction term) for rate R "
    "(the KL term): one button trains this model once per β, all at once, and each becomes a point "
    "moving on the plane. Click a point to make that model this session's."
)


def parse_betas(text) -> list[float]:
    """β values from a comma-separated text (an untrusted input)."""
    if not isinstance(text, str) or not text.strip():
        raise Refused("β values: give numbers separated by commas, e.g. 0.5, 1, 4.")
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise Refused("β values: give numbers separated by commas, e.g. 0.5, 1, 4.") from None
    if not 1 <= len(values) <= MAX_MODELS:
        raise Refused(f"β values: give 1 to {MAX_MODELS} of them.")
    return values


def _finite(path: list[list[float]]) -> list[list[float]]:
    """The places of a path that can be drawn: a history read from a file may hold NaN or ±inf
    (records.EpochRecord.from_dict keeps them), or numbers too large to plot."""
    return [p for p in path if all(math.isfinite(v) and abs(v) < 1e9 for v in p)]


def _nice(lo: float, hi: float, n: int = 4) -> list[float]:
    """About n round numbers strictly inside (lo, hi)."""
    raw = (hi - lo) / (n + 1)
    if not math.isfinite(raw) or raw <= 0:
        return []
    p = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * p for m in (1, 2, 5, 10) if m * p >= raw)
    first = math.floor(lo / step + 1) * step
    return [round(first + i * step, 6) for i in range(n + 2) if lo < first + i * step < hi]


def plane_value(ws, selected: int | None = None) -> str:
    """The plane's JSON: each sweep model's path [[R, D], …] with its β, colour and I(x; z) now,
    the Train run's path, the visible bounds, the −ELBO lines, the distortion floor."""
    sweep = ws.last_sweep
    models = []
    if sweep is not None:
        for k, beta in enumerate(sweep.betas):
            path = [[round(r.points[k].rate, 4), round(r.points[k].distortion, 3)] for r in sweep.records]
            models.append(
                {
                    "beta": beta,
                    "color": SWEEP_COLOURS[k % len(SWEEP_COLOURS)],
                    "path": _finite(path[1:] or path),  # from the first update: the start is far off
                    "info": round(sweep.records[-1].points[k].mutual_info, 4),  # I(x; z) ≤ R now
                }
            )
    # The run is drawn beside the sweep only on the same data, as the sweep sees it (grey pixels)
    same_data = sweep is None or (sweep.data.name == ws.data.name and not ws.run.train.binarize)
    history = ws.run.history if same_data and not ws.model.config.autoencoder else []
    run = _finite([[round(h.test_kl, 4), round(h.test_recon, 3)] for h in history])
    previous = _finite(ghost.plane_path(ws.previous_run, ws.data.name, ws.model.config.autoencoder))
    previous = previous if same_data else []
    # The view holds where the models are now (their last epoch) and the run's last epochs: the
    # early places, far up, fly in from the top edge.
    shown = [p for m in models for p in m["path"][-UPDATES_PER_EPOCH:]] + run[-SHOWN_RUN_EPOCHS:]
    shown += previous[-SHOWN_RUN_EPOCHS:]
    floor = sweep.distortion_floor() if sweep is not None else None
    if shown:
        rs, ds = [p[0] for p in shown], [p[1] for p in shown]
        r1, d0, d1 = max(rs), min(ds), max(ds)
        if floor is not None and floor > d0 - (d1 - d0):  # the floor joins the view when it is near
            d0 = min(d0, floor)
        r_pad, d_pad = max(r1, 1.0) * 0.12, max(d1 - d0, 1.0) * 0.15
        bounds = [0.0, r1 + r_pad, d0 - d_pad, d1 + d_pad]
        sums = [r + d for r, d in shown]
        lines = _nice(min(sums), max(sums) + r_pad)
    else:
        bounds, lines = [0.0, 10.0, 0.0, 300.0], []
    return json.dumps(
        {
            "models": models,
            "run": run,
            "previous": previous,
            "bounds": bounds,
            "elbo_lines": lines,
            "floor": floor if floor is not None and floor >= bounds[2] else None,
            "floor_label": "D floor: a perfect reconstruction (grey pixels are coin flips)",
            "selected": selected,
            "legend": "Hollow circles: I(x; z), the part of each model's rate that tells the images apart "
            "(at most log N); the rest of R is KL(q(z) ‖ p(z)).",
        }
    )


def on_open(ws):
    ws = workspace(ws)
    return ws, plane_value(ws)


def on_sweep(ws, betas, epochs):
    """Train the session's model configuration once per β, all at once; the plane as they move."""
    ws = workspace(ws)
    values = parse_betas(betas)
    epochs = as_int(epochs, "Sweep epochs", 1, MAX_EPOCHS)
    if ws.is_training:
        raise Refused("Training is running in this session: stop it first.")
    t0, last = time.perf_counter(), 0.0
    run = guard(lambda: ws.sweep(values, epochs))
    rec = None
    while True:
        try:
            rec = guard(lambda: next(run))
        except StopIteration:
            break
        now = time.perf_counter()
        if now - last > 0.5 or rec.epoch >= epochs:
            last = now
            text = f"Training {len(values)} models at once… epoch {rec.epoch:.2f} of {epochs}"
            yield ws, plane_value(ws), text
    seconds = time.perf_counter() - t0
    done = (
        f"{len(values)} models trained for {epochs} epochs in {seconds:.0f} s. A low β buys a sharp "
        "reconstruction with a high rate, a high β the other way; points on one dashed line have the "
        "same −ELBO. Click a point to make that model this session's."
    )
    yield ws, plane_value(ws), done


def _load(ws, k: int) -> tuple:
    beta = guard(lambda: ws.load_from_sweep(k))
    text = (
        f"The model with β = {beta} is now this session's model: its latent map is on Latent space, its "
        "samples and traversal on Generate."
    )
    return ws, plane_value(ws, selected=k), text


def on_plane_click(ws, evt: gr.EventData):
    """A click on the plane: the nearest model's point (in the plane's own proportions) is loaded."""
    ws = workspace(ws)
    data = getattr(evt, "_data", None)
    data = data if isinstance(data, dict) else {}
    r, d = data.get("x"), data.get("y")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (r, d)):
        raise Refused("A click on the plane must carry finite x and y.")
    sweep = ws.last_sweep
    if sweep is None or not sweep.records:
        raise Refused("Run a β sweep first: then click one of its points.")
    b = json.loads(plane_value(ws))["bounds"]
    last = sweep.records[-1].points
    dist = [((p.rate - r) / (b[1] - b[0])) ** 2 + ((p.distortion - d) / (b[3] - b[2])) ** 2 for p in last]
    return _load(ws, min(range(len(last)), key=dist.__getitem__))


def on_sweep_load(ws, beta):
    """Load the last sweep's model of the given β (the API's way to click a point)."""
    ws = workspace(ws)
    beta = as_float(beta, "β", 0.0, 100.0)
    sweep = ws.last_sweep
    if sweep is None:
        raise Refused("Run a β sweep first: there is no sweep model to load.")
    if beta not in sweep.betas:
        raise Refused(f"β must be one of the sweep's: {', '.join(str(b) for b in sweep.betas)}.")
    k = sweep.betas.index(beta)
    return _load(ws, k)


def build(state: gr.State) -> tuple[gr.HTML, list]:
    """The section's components and events; returns the plane and the events that load a sweep
    model into the session (the tab refreshes its other views after them)."""
    gr.Markdown(HOW)
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            betas = gr.Textbox(
                ", ".join(f"{b:g}" for b in DEFAULT_BETAS), label="β values", elem_id="sweep-betas"
            )
            epochs = gr.Slider(
                1, MAX_EPOCHS, value=DEFAULT_EPOCHS, step=1, label="Sweep epochs", elem_id="sweep-epochs"
            )
            with gr.Row():
                go = gr.Button("Sweep β", variant="primary", elem_id="sweep-run")
                stop = gr.Button("Stop", variant="stop", elem_id="sweep-stop")
            status = gr.Markdown(elem_id="sweep-status")
        with gr.Column(scale=3):
            plane = gr.HTML(
                value=None,
                html_template=PLANE_HTML,
                css_template=PLANE_CSS,
                js_on_load=PLANE_JS,
                elem_id="rd-plane",
            )
    event = go.click(
        on_sweep,
        [state, betas, epochs],
        [state, plane, status],
        api_name="sweep",
        concurrency_limit=TRAIN_CONCURRENCY,
        concurrency_id="train",
        show_progress="hidden",
    )
    stop.click(None, None, None, cancels=[event], api_visibility="private")
    clicked = plane.click(
        on_plane_click, [state], [state, plane, status], api_visibility="private", concurrency_limit=None
    )
    with gr.Group(visible=False):
        beta_in = gr.Number(1.0, label="β")
        load_btn = gr.Button()
    loaded = load_btn.click(on_sweep_load, [state, beta_in], [state, plane, status], api_name="sweep_load")
    return plane, [clicked, loaded]
