"""The AE vs VAE tab: a plain autoencoder and a VAE of the same size, on the same data, side by
side — their latent maps against the prior, decodes of the same z ~ N(0, I), an interpolation
through each, and the figures of ``vae_explorer.compare`` in numbers and words.

The two models live in this tab's own per-session State: loading or training them never
touches the session's workspace (the Train tab's model).
"""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import torch
from gradio.components.plot import PlotData

from .. import compare
from ..config import ModelConfig, TrainConfig
from ..data import load_dataset
from ..generate import decode_z
from ..records import EpochRecord, StepRecord
from . import plots
from .common import (
    LIMITS,
    SESSION_TTL,
    TRAIN_CONCURRENCY,
    Refused,
    as_choice,
    as_int,
    display,
    guard,
    sentence,
    why,
)

CLASSES = [str(i) for i in range(10)]  # MNIST's classes (both ways of getting a pair use mnist-10k)
DATA = compare.DEFAULT_PAIR  # the data set of the shipped pair and of "train both now"
GRID = 36  # prior samples shown per model (6 × 6: each digit ≥ 84 px in half the page)
FRAMES = 9  # decodes along each interpolation
HIDDEN = 400  # the shipped twins' hidden width; "train both now" uses it too
LATENT_CHOICES = [("2 (a map of the latent itself)", 2), ("8 (PCA plane of the codes)", 8)]
MAX_EPOCHS = min(300, LIMITS.max_epochs)
PRIVATE = {"api_visibility": "private"}


def _forget(pair: compare.ModelPair | None) -> None:
    """delete_callback of the pair's State: nothing to stop; the models are simply dropped."""


def _map_figure(lm: compare.LatentMap, class_names: list[str], title: str) -> PlotData:
    """Test μ by class, the shown prior samples as crosses, the prior's 1σ and 2σ circles."""
    plane = "z itself" if lm.method == "identity" else "PCA plane of μ"
    text = f"{title}: test μ ({plane}); dotted: prior 1σ, 2σ"
    return plots.latent_scatter(lm.coords, lm.labels, class_names, text, lm.prior_centre, lm.samples, 420)


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _figures_text(c: compare.Comparison, pair: compare.ModelPair) -> str:
    k = pair.data.num_classes
    names = pair.data.class_names
    rows = [
        "| | autoencoder | VAE | real test images |",
        "|---|---|---|---|",
        f"| prior samples recognised with confidence (p > {c.threshold:g}) | "
        f"**{_pct(c.ae.prior.confident_share)}** | **{_pct(c.vae.prior.confident_share)}** | "
        f"{_pct(c.real.confident_share)} |",
        f"| classes the prior samples cover (effective number, of {k}) | **{c.ae.prior.classes:.1f}** | "
        f"**{c.vae.prior.classes:.1f}** | {c.real.classes:.1f} |",
        f"| classifier score of the prior samples (1 … {k}) | **{c.ae.prior.score:.2f}** | "
        f"**{c.vae.prior.score:.2f}** | {c.real.score:.2f} |",
        f"| reconstructions recognised with confidence | {_pct(c.ae.recon.confident_share)} | "
        f"{_pct(c.vae.recon.confident_share)} | — |",
        f"| aggregate-posterior gap KL(q(z) ‖ N(0, I)) | **{c.ae.prior_gap:.2f} nats** | "
        f"**{c.vae.prior_gap:.3f} nats** | — |",
    ]
    counts = np.asarray(c.ae.prior.counts)
    top = np.argsort(counts)[::-1][:2]
    words = [
        f"The autoencoder's codes, taken together, are {c.ae.prior_gap:.2f} nats from N(0, I) (the gap); "
        f"the VAE's {c.vae.prior_gap:.3f}. Nothing in the autoencoder's loss asks its codes to fill the "
        "prior, so z ~ N(0, I) (the crosses) lands on only part of its map, and in the gaps between "
        "its clusters; the KL term spreads the VAE's codes over the prior's circles."
        if c.ae.prior_gap > max(1.0, 10 * c.vae.prior_gap)
        else "The two models' codes are about as far from N(0, I) (the gap): train longer to see them part.",
        f"Its prior samples cover {c.ae.prior.classes:.1f} classes, the VAE's {c.vae.prior.classes:.1f}: "
        f"{_pct(counts[top].sum() / counts.sum())} of the autoencoder's look most like "
        f"{names[top[0]]} or {names[top[1]]}. The classifier score (the Inception score with this "
        "classifier: high when samples are both recognisable and varied) puts the two together.",
    ]
    if abs(c.ae.prior.confident_share - c.vae.prior.confident_share) < 0.1 and pair.ae.latent_dim == 2:
        words.append(
            "The share recognised with confidence is about the same for both here: with a 2-D latent "
            "the autoencoder's decoder still draws digit-like strokes near the origin, just not all "
            "digits. Train both with an 8-D latent (under Train both now): then its samples stop "
            "looking like digits."
        )
    elif c.vae.prior.confident_share > c.ae.prior.confident_share + 0.03:
        words.append(
            f"The classifier recognises {_pct(c.vae.prior.confident_share)} of the VAE's prior samples "
            f"with confidence and {_pct(c.ae.prior.confident_share)} of the autoencoder's."
        )
    head = (
        f"**{pair.source}** on {c.dataset}. Judge: logistic regression on the pixels "
        f"({_pct(c.classifier_accuracy)} right on the test set); {c.n_prior} prior samples, seed {c.seed}."
    )
    return "\n\n".join([head, "\n".join(rows), why("\n\n".join(words), "what the figures say")])


def _strip(pair: compare.ModelPair, model, a: int, b: int):
    x_a, x_b = pair.data.x_test[a : a + 1], pair.data.x_test[b : b + 1]  # (1, C, H, W) each
    frames = compare.interpolate_between(model, x_a, x_b, FRAMES)  # (FRAMES, C, H, W)
    return display(torch.cat([x_a, frames, x_b]), nrow=FRAMES + 2)


def _render(pair: compare.ModelPair, seed, class_a, class_b) -> list:
    seed = as_int(seed, "Sample seed", 0, 2**31 - 1)
    a, b = (int(as_choice(v, name, CLASSES[: pair.data.num_classes])) for v, name in
            ((class_a, "Endpoint A"), (class_b, "Endpoint B")))  # fmt: skip
    ia, ib = (guard(lambda k=k: compare.first_of_class(pair.data, k)) for k in (a, b))
    c = guard(lambda: compare.compare(pair.ae, pair.vae, pair.data, seed=seed))
    out = [_figures_text(c, pair)]
    maps, grids, strips = [], [], []
    for title, model in (("Autoencoder", pair.ae), ("VAE", pair.vae)):
        z = compare.prior_z(model.latent_dim, GRID, seed)  # (GRID, D): the same z for both
        maps.append(_map_figure(compare.latent_map(model, pair.data, z), pair.data.class_names, title))
        grids.append(display(decode_z(model, z), nrow=6))
        strips.append(_strip(pair, model, ia, ib))
    return [*out, *maps, *grids, *strips]


def on_load(pair, seed, class_a, class_b):
    """Load the shipped autoencoder and VAE twins (mnist-10k, 2-D latent) and compare them."""
    pair = guard(compare.load_shipped_pair)
    return [pair, *_render(pair, seed, class_a, class_b)]


def on_view(pair, seed, class_a, class_b):
    """Redraw with another sample seed or other endpoints (the shipped pair if none yet)."""
    if pair is None:
        pair = guard(compare.load_shipped_pair)
    return [pair, *_render(pair, seed, class_a, class_b)]


def on_train(pair, latent_dim, epochs, train_seed, seed, class_a, class_b):
    """Train an autoencoder and a VAE now: same data (mnist-10k), size, seed and steps; streams."""
    latent_dim = as_int(latent_dim, "Latent size", 2, 8)
    epochs = as_int(epochs, "Epochs", 1, MAX_EPOCHS)
    train_seed = as_int(train_seed, "Training seed", 0, 2**31 - 1)
    # The view's inputs are checked now, not after a minute of training.
    as_int(seed, "Sample seed", 0, 2**31 - 1)
    for v, name in ((class_a, "Endpoint A"), (class_b, "Endpoint B")):
        as_choice(v, name, CLASSES[:10])  # mnist-10k's ten classes
    tcfg = guard(lambda: TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=train_seed))
    guard(lambda: LIMITS.check(ModelConfig(latent_dim=latent_dim, hidden_dim=HIDDEN), tcfg))
    data = guard(lambda: load_dataset(DATA, download=False))
    done: list[str] = []
    last = 0.0
    try:
        for item in compare.train_twins(data, latent_dim, HIDDEN, tcfg):
            if isinstance(item, compare.ModelPair):
                yield [item, *_render(item, seed, class_a, class_b)]
                return
            rec, now = item.record, time.perf_counter()
            if isinstance(rec, EpochRecord) and rec.epoch == epochs:
                done.append(f"The {item.kind} is trained ({epochs} epochs).")
            elif now - last > 1.0:
                last = now
                ep = rec.epoch if isinstance(rec, EpochRecord) else rec.epoch + 1
                recon = rec.recon if isinstance(rec, StepRecord) else rec.test_recon
                line = f"Training the {item.kind}… epoch {ep}/{epochs}, reconstruction {recon:.1f} nats"
                yield [gr.skip(), "\n\n".join([*done, line]), *[gr.skip()] * 6]
    except gr.Error:
        raise
    except ValueError as err:  # a run that stopped (compare.train_twins)
        raise Refused(sentence(str(err))) from None


def on_show(pair, seed, class_a, class_b):
    """Opening the tab: the shipped pair the first time, nothing to redo after that."""
    if pair is not None:
        return [gr.skip()] * 8
    return on_view(pair, seed, class_a, class_b)


def build(tab: gr.Tab | None = None) -> gr.State:
    """The tab's components and events inside the caller's ``gr.Tab``; returns the pair's State."""
    pair = gr.State(None, time_to_live=SESSION_TTL, delete_callback=_forget)
    gr.Markdown(
        "A plain **autoencoder** (z = μ, no KL) and a **VAE** with the same networks, data, seed "
        "and steps: only the VAE's codes are pulled towards N(0, I), so only its prior samples "
        "land where digits were encoded."
    )
    with gr.Row():
        load = gr.Button("Load the shipped pair", variant="primary", elem_id="compare-load", scale=2)
        seed = gr.Number(
            0, precision=0, label="Sample seed", info="the same z for both", elem_id="compare-seed"
        )
        class_a = gr.Dropdown(CLASSES, value="3", label="Endpoint A (class)", elem_id="compare-a")
        class_b = gr.Dropdown(CLASSES, value="7", label="Endpoint B (class)", elem_id="compare-b")
    with gr.Accordion("Train both now (mnist-10k, about 5 s per model here)", open=False), gr.Row():
        latent = gr.Dropdown(
            LATENT_CHOICES,
            value=8,
            label="Latent size",
            info="with 8 the autoencoder's prior samples stop looking like digits",
            elem_id="compare-latent",
        )
        epochs = gr.Slider(1, MAX_EPOCHS, value=10, step=1, label="Epochs", elem_id="compare-epochs")
        train_seed = gr.Number(0, precision=0, label="Training seed", elem_id="compare-train-seed")
        train = gr.Button("Train both now", elem_id="compare-train")
        stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    figures = gr.Markdown("Press **Load the shipped pair** to compare.", elem_id="compare-figures")
    outs = []
    with gr.Row():
        for side, title in (("ae", "Autoencoder: z = μ, no KL"), ("vae", "VAE: z ~ q(z|x), KL to N(0, I)")):
            with gr.Column():
                gr.Markdown(f"### {title}")
                outs.append(gr.Plot(show_label=False, elem_id=f"compare-{side}-map"))
    with gr.Row():
        for side in ("ae", "vae"):
            outs.append(gr.Image(label=f"Decodes of the same {GRID} z ~ N(0, I)", interactive=False,
                                 format="png", elem_id=f"compare-{side}-samples"))  # fmt: skip
    # The paths one above the other, full width: 11 images a row stay readable on a projector.
    for side, who in (("ae", "autoencoder"), ("vae", "VAE")):
        outs.append(gr.Image(label=f"{who}: test image A, decodes along the line from μ(A) to μ(B), "
                                   "test image B", interactive=False, format="png",
                             elem_id=f"compare-{side}-interp"))  # fmt: skip
    # outs: [ae map, vae map, ae samples, vae samples, ae interp, vae interp]
    view_outputs = [pair, figures, *outs]
    fast = {"concurrency_limit": None, "show_progress": "minimal"}
    inputs = [pair, seed, class_a, class_b]
    load.click(on_load, inputs, view_outputs, api_name="compare", **fast)
    for comp, api in ((seed, {"api_name": "compare_view"}), (class_a, None), (class_b, None)):
        comp.input(on_view, inputs, view_outputs, trigger_mode="always_last", **(api or PRIVATE), **fast)
    train_event = train.click(
        on_train,
        [pair, latent, epochs, train_seed, seed, class_a, class_b],
        view_outputs,
        api_name="compare_train",
        concurrency_limit=TRAIN_CONCURRENCY,
        concurrency_id="train",
        show_progress="minimal",
    )
    stop.click(None, None, None, cancels=[train_event], api_visibility="private")
    if tab is not None:
        tab.select(on_show, inputs, view_outputs, api_visibility="private", **fast)
    return pair
