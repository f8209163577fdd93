"""Plotly figures of training, as plain figure JSON.

Built as dicts rather than ``plotly.graph_objects`` figures: validating a go.Figure costs
10-30 ms, which a live view paying it four times per update would take from training.
gr.Plot re-sends the whole figure on every update, so the series are thinned as well.
"""

from __future__ import annotations

import json

from gradio.components.plot import PlotData

from ..records import EpochRecord, StepRecord
from .export import plot_config
from .palette import class_colour

MAX_POINTS = 400  # per series shown
# nats: below this a dimension carries almost no information (about where Burda et al.'s
# activity threshold, Var(mu_d) > 0.01, puts it when σ ≈ 1)
INACTIVE_KL = 0.01
COLORS = {
    "train": "#94a3b8",
    "smooth": "#4f46e5",
    "test": "#db2777",
    "beta": "#0f766e",
    "grad": "#ea580c",
    "info": "#16a34a",  # I(x; z), the part of the KL that says which input z encodes
}
UIREVISION = "vx-train"  # constant on the Train plots: what the browser changed survives each update
AXIS = {"gridcolor": "#e5e7eb", "zerolinecolor": "#e5e7eb", "automargin": True}


def thin(xs: list, ys: list) -> tuple[list, list]:
    stride = max(1, len(xs) // MAX_POINTS)
    return xs[::stride], ys[::stride]


def ema(values: list[float], alpha: float = 0.05) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else (1 - alpha) * acc + alpha * v
        out.append(acc)
    return out


def _line(x: list, y: list, name: str, color: str, width: float = 2, **extra) -> dict:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": y,
        "name": name,
        "line": {"color": color, "width": width},
        **extra,
    }


def figure(data: list[dict], title: str, ytitle: str, xtitle: str = "optimiser step", **layout) -> PlotData:
    fig = {
        "data": data,
        "layout": {
            "title": {"text": title, "font": {"size": 14}},
            "xaxis": {"title": {"text": xtitle}, **AXIS},
            "yaxis": {"title": {"text": ytitle}, **AXIS},
            "height": 260,
            "margin": {"l": 50, "r": 10, "t": 36, "b": 44},
            # Inside the plot, in the corner a falling curve leaves free (a rising one: LEGEND_LOW).
            "legend": {"y": 1, "x": 1, "xanchor": "right", "bgcolor": "rgba(255,255,255,0.75)"},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "font": {"family": "sans-serif", "size": 12},
            **layout,
        },
        "config": plot_config(title),  # the toolbar's PNG (and, with export.py's script, SVG) download
    }
    return PlotData(type="plotly", plot=json.dumps(_scrub(fig), allow_nan=False))


LEGEND_LOW = {"y": 0, "yanchor": "bottom", "x": 1, "xanchor": "right", "bgcolor": "rgba(255,255,255,0.75)"}


def _scrub(obj):
    """NaN and ±Inf are not JSON; None (a gap in the line) is what they mean here."""
    if isinstance(obj, float) and (obj != obj or abs(obj) == float("inf")):
        return None
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def _curve(
    steps: list[StepRecord],
    history: list[EpochRecord],
    attr: str,
    test_key: str,
    title: str,
    ytitle: str,
    **layout,
) -> PlotData:
    return figure(_curve_data(steps, history, attr, test_key), title, ytitle, **layout)


def _curve_data(steps: list[StepRecord], history: list[EpochRecord], attr: str, test_key: str) -> list[dict]:
    """Per step, smoothed, and per-epoch test lines of one quantity."""
    data = []
    xs = [r.step for r in steps]
    ys = [getattr(r, attr) for r in steps]
    if xs:
        data.append(_line(*thin(xs, ys), "per step", COLORS["train"], 1))
        data.append(_line(*thin(xs, ema(ys)), "smoothed", COLORS["smooth"]))
    if history:
        data.append(
            _line(
                [h.step for h in history],
                [getattr(h, test_key) for h in history],
                "test (per epoch)",
                COLORS["test"],
                mode="lines+markers",
            )
        )
    return data


def recon_figure(steps: list[StepRecord], history: list[EpochRecord], ghost: list[dict] = ()) -> PlotData:
    """The reconstruction term; ``ghost``: the previous run's faint traces (ghost.traces)."""
    data = _curve_data(steps, history, "recon", "test_recon") + list(ghost)
    return figure(data, "Reconstruction −log p(x|z)", "nats / image", uirevision=UIREVISION)


LEVEL_COLORS = ("#0891b2", "#ca8a04")  # z₁ (bottom), z₂ (top)


def kl_figure(steps: list[StepRecord], history: list[EpochRecord], ghost: list[dict] = ()) -> PlotData:
    """The KL term; for a hierarchical model also each level's KL, smoothed and per epoch, so
    a top level that collapses (its KL → 0) is seen at once. ``ghost``: the previous run's."""
    n_levels = max(
        [1] + [len(r.kl_levels) for r in steps[-1:]] + [len(h.test_kl_levels) for h in history[-1:]]
    )
    if n_levels < 2:
        data = _curve_data(steps, history, "kl", "test_kl") + _information_line(history) + list(ghost)
        return figure(
            data, "KL(q(z|x) ‖ p(z)) and I(x; z)", "nats / image", legend=LEGEND_LOW, uirevision=UIREVISION
        )
    fig = _curve(
        steps, history, "kl", "test_kl", "KL per level: total, z₁ (bottom), z₂ (top)", "nats / image"
    )
    data = json.loads(fig.plot)["data"]
    xs = [r.step for r in steps if len(r.kl_levels) == n_levels]
    for i, color in enumerate(LEVEL_COLORS[:n_levels]):
        ys = [r.kl_levels[i] for r in steps if len(r.kl_levels) == n_levels]
        if xs:
            data.append(_line(*thin(xs, ema(ys)), f"z{i + 1} smoothed", color))
        hs = [h for h in history if len(h.test_kl_levels) == n_levels]
        if hs:
            data.append(
                _line(
                    [h.step for h in hs],
                    [h.test_kl_levels[i] for h in hs],
                    f"z{i + 1} test (per epoch)",
                    color,
                    mode="lines+markers",
                    line={"color": color, "width": 2, "dash": "dot"},
                )
            )
    data += list(ghost)
    title = "KL per level: total, z₁ (bottom), z₂ (top)"
    return figure(data, title, "nats / image", legend=LEGEND_LOW, uirevision=UIREVISION)


def _information_line(history: list[EpochRecord]) -> list[dict]:
    """The test KL's information part I(x; z) per epoch (information.py): the rest of the KL is
    KL(q(z) ‖ p(z)), the codes as a whole against the prior. Empty when it was not measured."""
    hs = [h for h in history if h.mutual_info == h.mutual_info]  # NaN: not measured (old files, AE)
    if not hs:
        return []
    return [
        _line(
            [h.step for h in hs],
            [h.mutual_info for h in hs],
            "I(x; z), test",
            COLORS["info"],
            mode="lines+markers",
            line={"color": COLORS["info"], "width": 2, "dash": "dash"},
        )
    ]


def schedule_figure(steps: list[StepRecord]) -> PlotData:
    data = []
    xs = [r.step for r in steps]
    if xs:
        data.append(_line(*thin(xs, [r.beta for r in steps]), "β", COLORS["beta"]))
        data.append(
            _line(
                *thin(xs, [r.grad_norm for r in steps]),
                "gradient norm (before clipping)",
                COLORS["grad"],
                1,
                yaxis="y2",
            )
        )
    return figure(
        data,
        "β and gradient norm",
        "β",
        margin={"l": 50, "r": 50, "t": 40, "b": 80},
        yaxis2={
            "title": {"text": "‖g‖"},
            "overlaying": "y",
            "side": "right",
            "type": "log",
            "showgrid": False,
        },
    )


def kl_dims_figure(history: list[EpochRecord]) -> PlotData:
    data = []
    kl = history[-1].kl_per_dim if history else []
    if kl:
        order = sorted(range(len(kl)), key=lambda d: -kl[d])
        colors = [COLORS["smooth"] if kl[d] >= INACTIVE_KL else "#cbd5e1" for d in order]
        data.append(
            {
                "type": "bar",
                "x": [f"z{d}" for d in order],
                "y": [kl[d] for d in order],
                "marker": {"color": colors},
                "name": "KL",
            }
        )
    return figure(
        data,
        f"KL per dimension (grey: < {INACTIVE_KL} nats, inactive)",
        "nats",
        xtitle="latent dimension, most active first",
        showlegend=False,
    )


def latent_scatter(
    coords,
    labels,
    class_names: list[str],
    title: str,
    prior_centre=None,
    samples=None,
    height: int = 330,
) -> PlotData:
    """The one latent scatter of the app (the Train tab's live map, the AE-vs-VAE maps): test
    means on the plane, one palette colour per class with its name in the legend; the prior's
    1σ and 2σ circles around ``prior_centre`` (x, y) when the plane shows them; ``samples``
    (S, 2) of the prior as crosses. coords (N, 2), labels (N,)."""
    data = []
    for k in sorted({int(v) for v in labels}):
        pts = coords[labels == k]  # (N_k, 2)
        name = class_names[k] if k < len(class_names) else str(k)
        data.append({
            "type": "scattergl", "mode": "markers", "name": name,
            "x": pts[:, 0].round(4).tolist(), "y": pts[:, 1].round(4).tolist(),
            "marker": {"size": 5, "color": class_colour(k), "opacity": 0.75},
        })  # fmt: skip
    if samples is not None:
        data.append({
            "type": "scatter", "mode": "markers", "name": "z ~ N(0, I)",
            "x": samples[:, 0].round(4).tolist(), "y": samples[:, 1].round(4).tolist(),
            "marker": {"size": 6, "color": "#111827", "symbol": "x-thin", "line": {"width": 1.5}},
        })  # fmt: skip
    # Ten classes in the legend without a scroll bar: a compact legend.
    legend = {"orientation": "v", "font": {"size": 11}, "tracegroupgap": 0, "itemsizing": "constant"}
    layout: dict = {"yaxis": {"scaleanchor": "x", **AXIS}, "legend": legend, "height": height}
    layout["margin"] = {"l": 40, "r": 10, "t": 40, "b": 40}
    if prior_centre is not None:
        cx, cy = (float(v) for v in prior_centre)
        layout["shapes"] = [
            {"type": "circle", "xref": "x", "yref": "y", "x0": cx - r, "y0": cy - r, "x1": cx + r,
             "y1": cy + r, "line": {"color": "#dc2626", "dash": "dot", "width": 1.5}}
            for r in (1, 2)
        ]  # fmt: skip
    return figure(data, title, "", xtitle="", **layout)


def latent_figure(coords, labels, class_names: list[str], method: str, epoch: int) -> PlotData:
    """The Train tab's live map: redrawn every epoch, it shows the space organising and the KL
    term pulling the codes towards N(0, I) (the prior's circles when the plane is z itself)."""
    plane = "dotted: prior 1σ, 2σ" if method == "identity" else "PCA plane"
    centre = (0.0, 0.0) if method == "identity" else None
    return latent_scatter(coords, labels, class_names, f"Test codes μ, epoch {epoch} ({plane})", centre)
