"""Plotly figures of training, kept small: gr.Plot re-sends the whole figure on every update."""

from __future__ import annotations

import plotly.graph_objects as go

from ..trainer import StepRecord

MAX_POINTS = 400  # per series shown
INACTIVE_KL = 0.1  # nats: a dimension below this carries almost no information
COLORS = {"train": "#94a3b8", "smooth": "#4f46e5", "test": "#db2777", "beta": "#0f766e", "grad": "#ea580c"}


def _thin(xs: list, ys: list) -> tuple[list, list]:
    stride = max(1, len(xs) // MAX_POINTS)
    return xs[::stride], ys[::stride]


def _ema(values: list[float], alpha: float = 0.05) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else (1 - alpha) * acc + alpha * v
        out.append(acc)
    return out


def _layout(fig: go.Figure, title: str, ytitle: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis_title="optimiser step",
        yaxis_title=ytitle,
        height=260,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.3},
        template="plotly_white",
    )
    return fig


def _curve(
    steps: list[StepRecord], history: list[dict], attr: str, test_key: str, title: str, ytitle: str
) -> go.Figure:
    fig = go.Figure()
    xs = [r.step for r in steps]
    ys = [getattr(r, attr) for r in steps]
    if xs:
        tx, ty = _thin(xs, ys)
        fig.add_scatter(
            x=tx, y=ty, mode="lines", name="per step", line={"color": COLORS["train"], "width": 1}
        )
        sx, sy = _thin(xs, _ema(ys))
        fig.add_scatter(
            x=sx, y=sy, mode="lines", name="smoothed", line={"color": COLORS["smooth"], "width": 2}
        )
    if history:
        fig.add_scatter(
            x=[h["step"] for h in history],
            y=[h[test_key] for h in history],
            mode="lines+markers",
            name="test (per epoch)",
            line={"color": COLORS["test"]},
        )
    return _layout(fig, title, ytitle)


def recon_figure(steps: list[StepRecord], history: list[dict]) -> go.Figure:
    return _curve(steps, history, "recon", "test_recon", "Reconstruction −log p(x|z)", "nats / image")


def kl_figure(steps: list[StepRecord], history: list[dict]) -> go.Figure:
    return _curve(steps, history, "kl", "test_kl", "KL(q(z|x) ‖ p(z))", "nats / image")


def schedule_figure(steps: list[StepRecord]) -> go.Figure:
    fig = go.Figure()
    xs = [r.step for r in steps]
    if xs:
        bx, by = _thin(xs, [r.beta for r in steps])
        fig.add_scatter(x=bx, y=by, mode="lines", name="β", line={"color": COLORS["beta"], "width": 2})
        gx, gy = _thin(xs, [r.grad_norm for r in steps])
        fig.add_scatter(
            x=gx,
            y=gy,
            mode="lines",
            name="gradient norm (before clipping)",
            yaxis="y2",
            line={"color": COLORS["grad"], "width": 1},
        )
    _layout(fig, "β and gradient norm", "β")
    fig.update_layout(
        yaxis2={"title": "‖g‖", "overlaying": "y", "side": "right", "type": "log"},
        margin={"l": 50, "r": 50, "t": 40, "b": 40},
    )
    return fig


def kl_dims_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    kl = history[-1].get("kl_per_dim", []) if history else []
    if kl:
        order = sorted(range(len(kl)), key=lambda d: -kl[d])
        colors = [COLORS["smooth"] if kl[d] >= INACTIVE_KL else "#cbd5e1" for d in order]
        fig.add_bar(x=[f"z{d}" for d in order], y=[kl[d] for d in order], marker_color=colors)
    fig.update_layout(
        title={
            "text": f"KL per latent dimension (grey: < {INACTIVE_KL} nats, inactive)",
            "font": {"size": 14},
        },
        yaxis_title="nats",
        height=260,
        template="plotly_white",
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    return fig
