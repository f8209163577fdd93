"""The "Inside the ELBO" tab: what the KL term buys and what the bound misses.

Two views of the session's model: the test KL split into the information z carries about its
input and the codes' distance from the prior (ELBO surgery, information.py), and for one chosen
image the encoder's bound, the bound of a posterior fitted to that image alone, and the IWAE
bound — the amortization and the approximation gap (gaps.py)."""

from __future__ import annotations

import math

import gradio as gr
import torch

from . import rd_view
from .common import MAX_IN_CLASS, Refused, as_int, display, guard, pick_test_image, why, workspace
from .plots import figure

INFO_POINTS = 2000  # test posteriors in the mixture q(z)
MAX_K = 5000  # importance samples the IWAE bound may take
GAP_STEPS = 100  # Adam steps fitting q* to the image
FAST = {"concurrency_limit": None, "show_progress": "minimal"}
BOUND_COLOURS = ("#4f46e5", "#0891b2", "#16a34a")

INFO_HOW = (
    "**What z says about x.** The test KL is I(x; z), what a code tells about *which* image it came "
    "from, plus KL(q(z) ‖ p(z)), how far all the codes together are from the prior."
    + why(
        "q(z), the aggregate posterior, is the mixture of the test images' posteriors; the split is "
        'exact (Hoffman & Johnson 2016, "ELBO surgery"). The information can be at most log N for N '
        "images (the dashed line): a KL beyond that only pushes the codes away from the prior. A "
        "collapsed posterior has I(x; z) ≈ 0: z says nothing about its input.",
        "the split",
    )
)

GAPS_HOW = (
    "**The gaps of one image.** Three bounds on −log p(x) of one test image: the encoder's, a "
    "Gaussian fitted to this image alone, and the importance-weighted one."
    + why(
        "The encoder gives every image its q(z|x) at once; fitting a Gaussian to this one image alone "
        "(100 Adam steps on its μ and log σ²) gives a tighter bound — the difference is the "
        "**amortization gap**. Even the best Gaussian is not the true posterior; the importance-weighted "
        "bound with K samples from it comes close to −log p(x) — the difference is the **approximation "
        'gap**. Lower is better on every bar (Cremer et al. 2018, "Inference suboptimality in VAEs").',
        "the gaps",
    )
)


def on_information(ws):
    """The test KL split into I(x; z) and KL(q(z) ‖ p(z)) over the first 2,000 test images."""
    ws = workspace(ws)
    s = guard(lambda: ws.information(INFO_POINTS))
    bars = [
        {"type": "bar", "orientation": "h", "y": ["KL"], "x": [max(s.mutual_info, 0.0)],
         "name": "I(x; z)", "marker": {"color": "#16a34a"}},
        {"type": "bar", "orientation": "h", "y": ["KL"], "x": [max(s.marginal_kl, 0.0)],
         "name": "KL(q(z) ‖ p(z))", "marker": {"color": "#94a3b8"}},
    ]  # fmt: skip
    fig = figure(
        bars,
        f"KL {s.kl:.2f} = I(x; z) {s.mutual_info:.2f} + KL(q(z) ‖ p(z)) {s.marginal_kl:.2f}, nats / image",
        "",
        xtitle="",
        barmode="stack",
        height=230,
        legend={"orientation": "h", "x": 0, "y": -0.25, "yanchor": "top"},
        margin={"l": 50, "r": 20, "t": 36, "b": 60},
        shapes=[
            {"type": "line", "x0": s.log_n, "x1": s.log_n, "y0": -0.5, "y1": 0.5,
             "line": {"color": "#111827", "dash": "dash", "width": 2}}
        ],
        annotations=[
            {"x": s.log_n, "y": 0.5, "text": f"log N = {s.log_n:.2f}", "showarrow": False,
             "yanchor": "bottom"}
        ],
    )  # fmt: skip
    saturated = s.mutual_info > 0.9 * s.log_n
    text = (
        f"Over the first {s.n:,} test images: I(x; z) = **{s.mutual_info:.2f} nats** of at most "
        f"log N = {s.log_n:.2f}; KL(q(z) ‖ p(z)) = **{s.marginal_kl:.2f} nats**."
    )
    if s.mutual_info < 0.1:
        text += " z says almost nothing about its input: the posterior has collapsed."
    elif saturated:
        text += (
            " The information is near log N: the posteriors barely overlap, so every code already "
            "names its image, and the rest of the KL keeps the codes away from the prior."
        )
    return ws, fig, text, _info_json(s)


def _info_json(s) -> dict:
    return {
        "kl": s.kl,
        "mutual_info": s.mutual_info,
        "marginal_kl": s.marginal_kl,
        "log_n": s.log_n,
        "n": s.n,
    }


def on_gaps(ws, cls, index, k):
    """The three bounds on −log p(x) of the chosen test image and the two gaps between them."""
    ws = workspace(ws)
    i, _ = pick_test_image(ws, cls, index)
    k = as_int(k, "Importance samples K", 10, MAX_K)
    x = ws.data.x_test[i : i + 1]
    label = int(ws.data.y_test[i]) if ws.model.config.conditional else None
    g = guard(lambda: ws.image_gaps(x, label, k, GAP_STEPS, seed=0))
    values = [g.encoder_neg_elbo, g.optimised_neg_elbo, g.iwae]
    if not all(math.isfinite(v) for v in values):
        raise Refused("The bounds are not finite for this model: train it (or load another) first.")
    names = ["−ELBO, encoder's q(z|x)", "−ELBO, q fitted to this image", f"IWAE bound, K = {k}"]
    lo, hi = min(values), max(values)
    pad = max(hi - lo, 1.0)
    bars = [
        {"type": "bar", "x": [n], "y": [v], "name": n, "marker": {"color": c}, "text": [f"{v:.2f}"],
         "textposition": "outside", "showlegend": False}
        for n, v, c in zip(names, values, BOUND_COLOURS, strict=True)
    ]  # fmt: skip
    fig = figure(
        bars,
        f"amortization gap {g.amortization_gap:.2f} nats · approximation gap {g.approximation_gap:.2f} nats",
        "nats (lower is tighter)",
        xtitle="",
        height=300,
        yaxis={"range": [lo - 1.5 * pad, hi + 0.6 * pad], "title": {"text": "nats (lower is tighter)"}},
    )
    decoded = ws.decode(torch.cat([g.q_encoder.mean, g.q_optimised.mean]).numpy(), label)  # no_grad inside
    images = display(torch.cat([x, decoded]), nrow=3)
    text = (
        f"Test image {i}: the encoder's bound {g.encoder_neg_elbo:.2f} nats, fitted to this image "
        f"{g.optimised_neg_elbo:.2f} (amortization gap **{g.amortization_gap:.2f}**), IWAE with K = {k} "
        f"{g.iwae:.2f} (approximation gap **{g.approximation_gap:.2f}**). Left to right: the image, "
        "the decode of the encoder's μ, the decode of the fitted μ."
    )
    info = {
        "index": i,
        "encoder_neg_elbo": g.encoder_neg_elbo,
        "optimised_neg_elbo": g.optimised_neg_elbo,
        "iwae": g.iwae,
        "amortization_gap": g.amortization_gap,
        "approximation_gap": g.approximation_gap,
        "k": k,
        "steps": g.steps,
    }
    return ws, images, fig, text, info


def on_classes(ws, cls):
    ws = workspace(ws)
    names = ws.data.class_names
    return ws, gr.update(choices=names, value=cls if cls in names else names[0])


def build(state: gr.State, tab: gr.Tab) -> None:
    plane, loads = rd_view.build(state)
    with gr.Row():
        with gr.Column():
            gr.Markdown(INFO_HOW)
            info_btn = gr.Button("Measure I(x; z)", variant="primary", elem_id="info-measure")
            info_plot = gr.Plot(show_label=False, elem_id="info-plot")
            info_text = gr.Markdown(elem_id="info-text")
        with gr.Column():
            gr.Markdown(GAPS_HOW)
            with gr.Row():
                cls = gr.Dropdown(
                    ["0"], value="0", label="Class", allow_custom_value=True, elem_id="gaps-class"
                )
                index = gr.Slider(
                    0, MAX_IN_CLASS - 1, value=0, step=1, label="Index", info="within the class"
                )
                k = gr.Slider(10, MAX_K, value=1000, step=10, label="Importance samples K", elem_id="gaps-k")
            gaps_btn = gr.Button("Measure the gaps", variant="primary", elem_id="gaps-run")
            gaps_image = gr.Image(
                label="x, decode(encoder's μ), decode(fitted μ)",
                elem_id="gaps-image",
                interactive=False,
                format="png",
            )
            gaps_plot = gr.Plot(show_label=False, elem_id="gaps-plot")
            gaps_text = gr.Markdown(elem_id="gaps-text")
    with gr.Group(visible=False):  # the figures as numbers, for scripts (gradio_client)
        info_json, gaps_json = gr.JSON(), gr.JSON()
    info_btn.click(
        on_information, [state], [state, info_plot, info_text, info_json], api_name="information", **FAST
    )
    gaps_btn.click(
        on_gaps,
        [state, cls, index, k],
        [state, gaps_image, gaps_plot, gaps_text, gaps_json],
        api_name="image_gaps",
        concurrency_limit=2,  # ~9,000 decodes each: a queue of them must not hold every worker
        show_progress="minimal",
    )
    info_io = ([state], [state, info_plot, info_text, info_json])
    for event in loads:  # a sweep model became the session's: its information split
        event.then(on_information, *info_io, api_visibility="private", **FAST)
    tab.select(rd_view.on_open, [state], [state, plane], api_visibility="private", **FAST)
    tab.select(on_classes, [state, cls], [state, cls], api_visibility="private", **FAST).then(
        on_information, [state], [state, info_plot, info_text, info_json], api_visibility="private", **FAST
    )
