"""What the Train tab shows: progress, diagnostics, figures and images, built from the
session's Workspace, and the streaming loop that refreshes them while training runs."""

from __future__ import annotations

import html
import math
import time

import gradio as gr
import torch

from ..config import TrainConfig
from ..diagnostics import training_findings
from ..latent import project
from ..records import EpochRecord, StepRecord, StopRecord
from ..session import Workspace
from . import ghost, plots
from .common import Refused, display, guard, sentence

YIELD_EVERY = 0.8  # seconds between live updates: each one re-sends figures (and images)
IMAGES_EVERY = 2.0  # seconds between refreshes of the reconstruction and sample images
N_RECON = 8
N_SAMPLES = 16  # 4 × 4: each digit stays ≥ 84 px in half the column on a projector
# Test codes on the live latent map: a fixed subset (the first images of the test set), encoded
# and projected once per refresh of the images, so the cost stays bounded (bench/bench_live_map.py).
LIVE_MAP_POINTS = 500
N_OUTPUTS = 9  # what view() returns, in order: see ``view``


def _progress_html(
    ws: Workspace, done: int, total: int, img_s: float, note: str = "", long_note: bool = False
) -> str:
    frac = 0.0 if total <= 0 else min(1.0, done / total)
    last = ws.run.history[-1] if ws.run.history else None
    c = ws.model.config
    parts = [
        f"<b>{html.escape(ws.data.name)}</b>",
        f"{c.arch} · {c.latent_dim}-D latent",
        f"epoch {ws.run.epoch}",
        f"step {ws.run.step if ws.trainer is None else ws.trainer.step}",
    ]
    if img_s > 0:
        parts.append(f"{img_s:,.0f} images/s")
    if last and c.autoencoder:
        parts.append(f"test reconstruction {last.test_loss:.2f} nats (an autoencoder has no ELBO)")
    elif last:
        parts.append(f"test −ELBO {last.test_loss:.2f} nats")
    bar = f'<div class="vx-bar"><div style="width:{100 * frac:.1f}%"></div></div>' if total > 0 else ""
    # A long note (what a step did) wraps onto lines of its own, also in lecture mode's one-line status.
    kind = "vx-note vx-note-long" if long_note else "vx-note"
    tail = f'<div class="{kind}">{html.escape(note)}</div>' if note else ""
    return f'<div id="train-status">{bar}<div>{" · ".join(parts)}</div>{tail}</div>'


def _diagnostics_md(ws: Workspace) -> str:
    stop = ws.last_stop.reason if ws.last_stop and ws.last_stop.rolled_back else None
    found = training_findings(ws.run.history, stop)
    if not ws.run.history and not found:
        return "*Diagnostics appear after the first epoch.*"
    if not found:
        return "**Diagnostics:** no problem detected: the KL is in use and the codes cover the prior."
    return "**Diagnostics**\n\n" + "\n".join(f"- {f}" for f in found)


def image_grids(ws: Workspace, per_row: int = N_RECON):
    """Test inputs above their reconstructions, ``per_row`` of each, and prior samples."""
    x, recon = ws.reconstructions(per_row)
    pairs = display(torch.cat([x, recon]), nrow=per_row)
    # A conditional model cycles through the classes when no label is given.
    samples = display(ws.sample(N_SAMPLES, 1.0, seed=0), nrow=4)
    return pairs, samples


def _live_map(ws: Workspace):
    """The latent space as it is now: the identity plane for a 2-D latent, else PCA re-fitted."""
    if LIVE_MAP_POINTS <= 0:
        return gr.skip()
    tp = ws.test_posteriors(LIVE_MAP_POINTS)
    mu, y = tp.q.mean, tp.labels
    method = "identity" if mu.shape[1] == 2 else "pca"
    coords = project(mu, method).coords
    epoch = ws.run.history[-1].epoch if ws.run.history else 0
    return plots.latent_figure(coords, y.numpy(), ws.data.class_names, method, epoch)


def view(
    ws: Workspace,
    done: int = 0,
    total: int = 0,
    img_s: float = 0.0,
    note: str = "",
    images: bool = True,
    long_note: bool = False,
):
    """Everything on the right-hand side, from the workspace."""
    steps, hist, previous = ws.step_log, ws.run.history, ws.previous_run
    now = max(steps[-1].step if steps else 0, hist[-1].step if hist else 0)
    until = now + max(total - done, 0)  # the ghost as far as this run goes, or will go while it trains
    out = [
        _progress_html(ws, done, total, img_s, note, long_note),
        _diagnostics_md(ws),
        plots.recon_figure(steps, hist, ghost.traces(previous, ws.run.dataset, "recon", "test_recon", until)),
        plots.kl_figure(steps, hist, ghost.traces(previous, ws.run.dataset, "kl", "test_kl", until)),
        plots.schedule_figure(steps),
        plots.kl_dims_figure(hist),
    ]
    out += [*image_grids(ws), _live_map(ws)] if images else [gr.skip()] * 3
    return out


def stream(ws: Workspace, tcfg: TrainConfig, note: str = ""):
    """Train and yield [state, *view] about once every YIELD_EVERY seconds, with fresh images
    after an epoch at most every IMAGES_EVERY seconds. Each update costs the training thread
    tens of milliseconds in Gradio, so more would slow training down for everyone."""
    steps_per_epoch = math.ceil(len(ws.data.x_train) / tcfg.batch_size)
    # Continue after a stop or steps part-way through an epoch finishes that epoch first.
    total = steps_per_epoch * tcfg.epochs - ws.carried_batches(tcfg)
    done, img_s, new_epoch = 0, 0.0, False
    t0 = last_yield = last_images = time.perf_counter()
    running = f"Training… {note}".strip()
    yield [ws, *view(ws, 0, total, note=running)]
    gen = guard(lambda: ws.train(tcfg))
    try:
        for rec in gen:
            now = time.perf_counter()
            if isinstance(rec, StepRecord):
                done += 1
                img_s = done * tcfg.batch_size / max(now - t0, 1e-9)
            elif isinstance(rec, EpochRecord):
                new_epoch = True
            elif isinstance(rec, StopRecord):
                note = (
                    "Stopped: the model is as it was after the last step."
                    if not rec.rolled_back
                    else "Training stopped: the weights were rolled back (see the diagnostics)."
                )
                yield [ws, *view(ws, done, total, img_s, note)]
                return
            if now - last_yield >= YIELD_EVERY:
                images = new_epoch and now - last_images >= IMAGES_EVERY
                yield [ws, *view(ws, done, total, img_s, running, images=images)]
                last_yield = now
                if images:
                    last_images, new_epoch = now, False
    except ValueError as err:  # e.g. already training in this session
        raise Refused(sentence(str(err))) from None
    yield [ws, *view(ws, done, total, img_s, "Finished.")]
