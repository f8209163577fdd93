"""The Train tab: every control the core offers, Start/Stop/Continue/Reset, live plots,
diagnostics in words, and checkpoints in and out."""

from __future__ import annotations

import html
import math
import tempfile
import time
from pathlib import Path

import gradio as gr
import torch

from ..checkpoint import shipped_checkpoints
from ..config import ARCHS, KL_SCHEDULES, LIKELIHOODS, ModelConfig, TrainConfig
from ..data import availability, dataset_names
from ..diagnostics import training_findings
from ..session import Workspace
from ..trainer import EpochRecord, StepRecord, StopRecord
from . import plots
from .common import (
    LIMITS,
    TRAIN_CONCURRENCY,
    as_bool,
    as_choice,
    as_float,
    as_int,
    display,
    guard,
    workspace,
)

YIELD_EVERY = 0.8  # seconds between live updates: each one re-sends figures (and images)
IMAGES_EVERY = 2.0  # seconds between refreshes of the reconstruction and sample images
N_RECON = 8
N_SAMPLES = 32


def _dataset_choices() -> list[tuple[str, str]]:
    out = []
    for name in dataset_names():
        ok, note = availability(name)
        out.append((name if ok else f"{name} ({note})", name))
    return out


def _configs(
    dataset,
    arch,
    latent,
    hidden,
    likelihood,
    binarize,
    conditional,
    beta,
    schedule,
    warmup,
    free_bits,
    lr,
    batch,
    epochs,
    clip,
    seed,
):
    """UI values → validated (ModelConfig, TrainConfig, data set name); gr.Error when bad."""
    dataset = as_choice(dataset, "Data set", dataset_names())
    arch = as_choice(arch, "Architecture", ARCHS)
    likelihood = as_choice(likelihood, "Likelihood", LIKELIHOODS)
    schedule = as_choice(schedule, "KL schedule", KL_SCHEDULES)
    latent = as_int(latent, "Latent size", 1, LIMITS.max_latent)
    hidden = as_int(hidden, "Hidden size", 8, LIMITS.max_hidden)
    tcfg = guard(
        lambda: TrainConfig(
            epochs=as_int(epochs, "Epochs", 1, LIMITS.max_epochs),
            batch_size=as_int(batch, "Batch size", 1, 4096),
            lr=as_float(lr, "Learning rate", 1e-6, 1.0),
            beta=as_float(beta, "β", 0.0, 100.0),
            kl_schedule=schedule,
            warmup_epochs=as_float(warmup, "Warm-up epochs", 0.0, 1000.0),
            free_bits=as_float(free_bits, "Free bits", 0.0, 10.0),
            grad_clip=as_float(clip, "Gradient clip", 0.0, 1000.0),
            binarize=as_bool(binarize, "Binarize"),
            seed=as_int(seed, "Seed", 0, 2**31 - 1),
        )
    )
    return (arch, latent, hidden, likelihood, as_bool(conditional, "Conditional")), tcfg, dataset


def _progress_html(ws: Workspace, done: int, total: int, img_s: float, note: str = "") -> str:
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
    if last:
        parts.append(f"test −ELBO {last['test_loss']:.2f} nats")
    bar = f'<div class="vx-bar"><div style="width:{100 * frac:.1f}%"></div></div>' if total > 0 else ""
    tail = f'<div class="vx-note">{html.escape(note)}</div>' if note else ""
    return f'<div id="train-status">{bar}<div>{" · ".join(parts)}</div>{tail}</div>'


def _diagnostics_md(ws: Workspace) -> str:
    stop = ws.last_stop.reason if ws.last_stop and ws.last_stop.rolled_back else None
    found = training_findings(ws.run.history, stop)
    if not ws.run.history and not found:
        return "*Diagnostics appear after the first epoch.*"
    if not found:
        return "**Diagnostics:** no problem detected: the KL is in use and the codes cover the prior."
    return "**Diagnostics**\n\n" + "\n".join(f"- {f}" for f in found)


def _images(ws: Workspace):
    x, recon = ws.reconstructions(N_RECON)
    pairs = display(torch.cat([x, recon]), nrow=N_RECON, px=480)
    # A conditional model cycles through the classes when no label is given.
    samples = display(ws.sample(N_SAMPLES, 1.0, seed=0), nrow=8)
    return pairs, samples


def view(
    ws: Workspace, done: int = 0, total: int = 0, img_s: float = 0.0, note: str = "", images: bool = True
):
    """Everything on the right-hand side, from the workspace."""
    steps, hist = ws.step_log, ws.run.history
    out = [
        _progress_html(ws, done, total, img_s, note),
        _diagnostics_md(ws),
        plots.recon_figure(steps, hist),
        plots.kl_figure(steps, hist),
        plots.schedule_figure(steps),
        plots.kl_dims_figure(hist),
    ]
    out += list(_images(ws)) if images else [gr.skip(), gr.skip()]
    return out


def _stream(ws: Workspace, tcfg: TrainConfig, note: str = ""):
    """Train and yield [state, *view] about once every YIELD_EVERY seconds, with fresh images
    after an epoch at most every IMAGES_EVERY seconds. Each update costs the training thread
    tens of milliseconds in Gradio, so more would slow training down for everyone."""
    steps_per_epoch = math.ceil(len(ws.data.x_train) / tcfg.batch_size)
    total = steps_per_epoch * tcfg.epochs
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
        raise gr.Error(str(err)) from None
    yield [ws, *view(ws, done, total, img_s, "Finished.")]


def build(state: gr.State) -> dict:
    """Lay out the tab inside the current gr.Blocks and wire its events."""
    shipped = list(shipped_checkpoints())
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Accordion("Model file", open=False):
                ckpt = gr.Dropdown(
                    shipped,
                    value=shipped[0] if shipped else None,
                    label="Shipped model",
                    elem_id="checkpoint-select",
                    info="pretrained, ready to explore",
                )
                load_btn = gr.Button("Load shipped model", size="sm")
                upload = gr.File(
                    label="Upload a .safetensors model",
                    file_types=[".safetensors"],
                    elem_id="checkpoint-upload",
                )
                save_btn = gr.Button("Prepare download of this model", size="sm")
                download = gr.File(label="Download", interactive=False, elem_id="checkpoint-download")
            dataset = gr.Dropdown(
                _dataset_choices(),
                value="digits",
                label="Data set",
                info="digits: 8×8, bundled; the others are 28×28",
            )
            with gr.Row():
                arch = gr.Radio(list(ARCHS), value="mlp", label="Architecture", info="MLP or small CNN")
                likelihood = gr.Radio(
                    list(LIKELIHOODS),
                    value="bernoulli",
                    label="Likelihood p(x|z)",
                    info="Bernoulli for [0, 1] pixels",
                )
            latent = gr.Slider(
                1, LIMITS.max_latent, value=2, step=1, label="Latent size", info="2 can be plotted directly"
            )
            hidden = gr.Slider(
                8,
                LIMITS.max_hidden,
                value=256,
                step=8,
                label="Hidden size",
                info="units in each hidden layer",
            )
            with gr.Row():
                binarize = gr.Checkbox(False, label="Binarize", info="fresh 0/1 draw per batch")
                conditional = gr.Checkbox(False, label="Conditional", info="label steers the decoder")
            with gr.Accordion("Objective: β, KL schedule, free bits", open=False):
                beta = gr.Slider(0.0, 20.0, value=1.0, step=0.1, label="β", info="KL weight; 1 = the ELBO")
                schedule = gr.Radio(
                    list(KL_SCHEDULES),
                    value="constant",
                    label="KL schedule",
                    info="linear/cyclical warm β up from 0 (against collapse)",
                )
                warmup = gr.Slider(
                    0,
                    100,
                    value=10,
                    step=1,
                    label="Warm-up epochs",
                    info="linear schedule: epochs to reach β",
                )
                free_bits = gr.Slider(
                    0.0,
                    2.0,
                    value=0.0,
                    step=0.05,
                    label="Free bits λ",
                    info="nats per dimension the KL is not pushed below",
                )
            with gr.Accordion("Optimisation", open=True):
                epochs = gr.Slider(
                    1,
                    LIMITS.max_epochs,
                    value=20,
                    step=1,
                    label="Epochs",
                    info="passes over the training set",
                )
                batch = gr.Slider(8, 512, value=64, step=8, label="Batch size", info="images per step")
                lr = gr.Number(1e-3, label="Learning rate", info="Adam; 1e-3 is a safe start")
                clip = gr.Number(1.0, label="Gradient clip", info="max gradient norm; 0 = off")
                seed = gr.Number(0, precision=0, label="Seed", info="same seed, same run")
            gr.Markdown(
                f"<small>Limits here: at most {LIMITS.max_epochs} epochs per run, "
                f"{LIMITS.max_train_images:,} training images, latent ≤ {LIMITS.max_latent}, "
                f"hidden ≤ {LIMITS.max_hidden}.</small>"
            )
        with gr.Column(scale=2):
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                cont = gr.Button("Continue", elem_id="train-continue")
                stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
                reset = gr.Button("Reset", elem_id="train-reset")
            status = gr.HTML(elem_id="train-progress", label="progress")
            diagnostics = gr.Markdown(elem_id="train-diagnostics", label="diagnostics")
            with gr.Row():
                recon_plot = gr.Plot(elem_id="recon-plot", show_label=False, label="reconstruction")
                kl_plot = gr.Plot(elem_id="kl-plot", show_label=False, label="kl")
            with gr.Row():
                sched_plot = gr.Plot(elem_id="schedule-plot", show_label=False, label="schedule")
                dims_plot = gr.Plot(elem_id="kl-dims-plot", show_label=False, label="kl_per_dim")
            with gr.Row():
                recon_img = gr.Image(
                    label="Test inputs (top) and reconstructions (bottom)",
                    elem_id="recon-images",
                    interactive=False,
                    format="png",
                    height=180,
                )
                samples_img = gr.Image(
                    label="Samples from the prior",
                    elem_id="train-samples",
                    interactive=False,
                    format="png",
                    height=320,
                )

    controls = [
        dataset,
        arch,
        latent,
        hidden,
        likelihood,
        binarize,
        conditional,
        beta,
        schedule,
        warmup,
        free_bits,
        lr,
        batch,
        epochs,
        clip,
        seed,
    ]
    right = [status, diagnostics, recon_plot, kl_plot, sched_plot, dims_plot, recon_img, samples_img]
    model_controls = [dataset, arch, latent, hidden, likelihood, conditional]

    def _fresh(ws, values):
        (a, lat, hid, lik, cond), tcfg, ds = _configs(*values)

        def make():
            data = ws._data_for(ds)
            mcfg = ModelConfig(
                input_shape=data.image_shape,
                arch=a,
                latent_dim=lat,
                hidden_dim=hid,
                likelihood=lik,
                conditional=cond,
                num_classes=data.num_classes,
            )
            ws.reset(mcfg, tcfg, ds)

        if ws.is_training:
            raise gr.Error("Training is running in this session: stop it first.")
        guard(make)
        return tcfg

    # Named parameters, in the order of `controls`: they are the API's argument names.
    # fmt: off
    def on_start(ws, dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional, beta,
                 kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs, grad_clip, seed):
        """Build a fresh model with these settings and train it, streaming progress."""
        ws = workspace(ws)
        ws.begin_action()
        tcfg = _fresh(ws, (dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional, beta,
                           kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs, grad_clip, seed))
        yield from _stream(ws, tcfg)

    def on_continue(ws, dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional, beta,
                    kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs, grad_clip, seed):
        """Train the current model further (its optimizer state is kept); the data set and model
        settings are those of the current model, the training settings are these."""
        ws = workspace(ws)
        ws.begin_action()
        model, tcfg, ds = _configs(dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional,
                                   beta, kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs,
                                   grad_clip, seed)
        c = ws.model.config
        current = (c.arch, c.latent_dim, c.hidden_dim, c.likelihood, c.conditional)
        note = ("Continuing the current model: data set and model settings apply on Start or Reset."
                if model != current or ds != ws.run.dataset else "")
        yield from _stream(ws, tcfg, note)

    def on_reset(ws, dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional, beta,
                 kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs, grad_clip, seed):
        """Replace the model by a fresh, untrained one with these settings."""
        ws = workspace(ws)
        _fresh(ws, (dataset, arch, latent_dim, hidden_dim, likelihood, binarize, conditional, beta,
                    kl_schedule, warmup_epochs, free_bits, lr, batch_size, epochs, grad_clip, seed))
        return [ws, *view(ws, note="A fresh, untrained model.")]
    # fmt: on

    def on_stop(ws):
        """Stop training after the current step; returns once it has stopped."""
        if ws is None:
            return [ws, *[gr.skip()] * len(right)]
        ws.request_stop()
        deadline = time.perf_counter() + 10
        while ws.is_training and time.perf_counter() < deadline:
            time.sleep(0.02)
        return [ws, *view(ws, note="Stopped: the model is as it was after the last step.")]

    def _loaded(ws, note):
        c = ws.model.config
        return [
            ws,
            *view(ws, note=note),
            ws.run.dataset,
            c.arch,
            c.latent_dim,
            c.hidden_dim,
            c.likelihood,
            c.conditional,
        ]

    def on_load(ws, name):
        ws = workspace(ws)
        paths = shipped_checkpoints()
        name = as_choice(name, "Shipped model", list(paths))
        if ws.is_training:
            raise gr.Error("Training is running in this session: stop it first.")
        guard(lambda: ws.load(paths[name]))
        return _loaded(ws, f"Loaded {name}.")

    def on_upload(ws, file):
        ws = workspace(ws)
        if not file:
            return [ws, *[gr.skip()] * (len(right) + len(model_controls))]
        if ws.is_training:
            raise gr.Error("Training is running in this session: stop it first.")
        path = Path(file if isinstance(file, str) else file.name)
        guard(lambda: ws.load(path))
        return _loaded(ws, f"Loaded {path.name}.")

    def on_save(ws):
        ws = workspace(ws)
        folder = Path(tempfile.mkdtemp(prefix="vae-explorer-"))
        name = f"vae-{ws.data.name.replace(':', '-').replace('/', '-')[:40]}-epoch{ws.run.epoch}.safetensors"
        return ws, str(guard(lambda: ws.save(folder / name)))

    def on_open(ws):
        ws = workspace(ws)
        return [ws, *view(ws, note="Ready: press Start to train, or explore the loaded model.")]

    train_kw = {"concurrency_limit": TRAIN_CONCURRENCY, "concurrency_id": "train", "show_progress": "hidden"}
    start_evt = start.click(on_start, [state, *controls], [state, *right], api_name="train", **train_kw)
    cont_evt = cont.click(
        on_continue, [state, *controls], [state, *right], api_name="continue_training", **train_kw
    )
    # Stop asks the trainer to end after its step (a clean, consistent model) and also cancels a
    # Start/Continue of this session that is still waiting in the queue.
    stop.click(
        on_stop,
        [state],
        [state, *right],
        api_name="stop",
        concurrency_limit=None,
        cancels=[start_evt, cont_evt],
    )
    reset.click(on_reset, [state, *controls], [state, *right], api_name="reset", concurrency_limit=None)
    load_btn.click(
        on_load,
        [state, ckpt],
        [state, *right, *model_controls],
        api_name="load_checkpoint",
        concurrency_limit=None,
    )
    upload.upload(
        on_upload,
        [state, upload],
        [state, *right, *model_controls],
        api_name="upload_checkpoint",
        concurrency_limit=None,
    )
    save_btn.click(on_save, [state], [state, download], api_name="save_checkpoint", concurrency_limit=None)
    return {"on_open": (on_open, [state], [state, *right])}
