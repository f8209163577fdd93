"""The Train tab: every control the core offers, Start/Stop/Continue/Reset, live plots,
diagnostics in words, and checkpoints in and out. What it shows is built in train_view."""

from __future__ import annotations

import inspect
import tempfile
import time
from pathlib import Path

import gradio as gr

from ..checkpoint import shipped_checkpoints
from ..config import ARCHS, GAUSSIAN_VARIANCES, KL_SCHEDULES, LIKELIHOODS, TrainConfig
from ..data import availability, dataset_names
from ..session import DEFAULT_CHECKPOINT
from .common import LIMITS, TRAIN_CONCURRENCY, as_choice, guard, workspace
from .train_settings import MODEL_KEYS, PARSERS, parse_settings, restorable  # noqa: F401 (re-exported)
from .train_view import N_OUTPUTS, stream, view


def _dataset_choices() -> list[tuple[str, str]]:
    out = []
    for name in dataset_names():
        ok, note = availability(name)
        out.append((name if ok else f"{name} ({note})", name))
    return out


def _fresh(ws, s: dict) -> TrainConfig:
    dataset, model, tcfg = parse_settings(s)
    if ws.is_training:
        raise gr.Error("Training is running in this session: stop it first.")
    guard(lambda: ws.new_model(dataset, tcfg, **model))
    return tcfg


# fmt: off
# One signature for the three endpoints that take the controls: Gradio names API arguments
# after the handler's parameters, so they are spelled out.
def on_start(ws, dataset, arch, latent_dim, hidden_dim, likelihood, gaussian_variance, gaussian_std,
             binarize, conditional, beta, kl_schedule, warmup_epochs, cycles, cycle_ratio, free_bits, lr,
             batch_size, epochs, grad_clip, seed, bottom_latent_dim, autoencoder):
    """Build a fresh model with these settings and train it, streaming progress."""
    s = {k: v for k, v in locals().items() if k != "ws"}
    ws = workspace(ws)
    ws.begin_action()
    yield from stream(ws, _fresh(ws, s))


def on_continue(ws, dataset, arch, latent_dim, hidden_dim, likelihood, gaussian_variance, gaussian_std,
                binarize, conditional, beta, kl_schedule, warmup_epochs, cycles, cycle_ratio, free_bits, lr,
                batch_size, epochs, grad_clip, seed, bottom_latent_dim, autoencoder):
    """Train the current model further with these training settings (its optimizer state is
    kept); the data set and model settings stay those of the current model."""
    s = {k: v for k, v in locals().items() if k != "ws"}
    ws = workspace(ws)
    ws.begin_action()
    ds, model, tcfg = parse_settings(s)
    current = {k: getattr(ws.model.config, k) for k in MODEL_KEYS}
    note = ("Continuing the current model: data set and model settings apply on Start or Reset."
            if model != current or ds != ws.run.dataset else "")
    yield from stream(ws, tcfg, note)


def on_reset(ws, dataset, arch, latent_dim, hidden_dim, likelihood, gaussian_variance, gaussian_std,
             binarize, conditional, beta, kl_schedule, warmup_epochs, cycles, cycle_ratio, free_bits, lr,
             batch_size, epochs, grad_clip, seed, bottom_latent_dim, autoencoder):
    """Replace the model by a fresh, untrained one with these settings."""
    s = {k: v for k, v in locals().items() if k != "ws"}
    ws = workspace(ws)
    _fresh(ws, s)
    return [ws, *view(ws, note="A fresh, untrained model.")]
# fmt: on


def on_stop(ws):
    """Stop training after the current step; returns once it has stopped."""
    if ws is None:
        return [ws, *[gr.skip()] * N_OUTPUTS]
    ws.request_stop()
    deadline = time.perf_counter() + 10
    while ws.is_training and time.perf_counter() < deadline:
        time.sleep(0.02)
    return [ws, *view(ws, note="Stopped: the model is as it was after the last step.")]


def _control_names() -> list[str]:
    return list(inspect.signature(on_start).parameters)[1:]


def _loaded(ws, session: dict, note: str, with_lecture: bool) -> list:
    """After a load: the view, then every control (and the lecture toggle). A file saved with
    its session restores all of them; any other file sets the data set and model settings."""
    c = ws.model.config
    values = {"dataset": ws.run.dataset, **{k: getattr(c, k) for k in MODEL_KEYS}}
    lecture = gr.skip()
    if session:
        good, dropped = restorable(session)
        values.update(good)
        if isinstance(session.get("lecture"), bool):
            lecture = session["lecture"]
        note += " Its saved session settings were restored."
        if dropped:
            note += f" {dropped} of them exceed this server's limits and were left as they were."
    controls = [values.get(k, gr.skip()) for k in _control_names()]
    return [ws, *view(ws, note=note), *controls, *([lecture] if with_lecture else [])]


def _load_handlers(with_lecture: bool):
    def on_load(ws, name):
        """Load a shipped model by name."""
        ws = workspace(ws)
        paths = shipped_checkpoints()
        name = as_choice(name, "Shipped model", list(paths))
        session = guard(lambda: ws.load(paths[name]))
        return _loaded(ws, session, f"Loaded {name}.", with_lecture)

    def on_upload(ws, file):
        """Load a .safetensors model file (validated; a pickle or a mismatched file is refused).
        A file saved here brings back the settings it was saved with, lecture mode included."""
        ws = workspace(ws)
        if not file:
            return [ws, *[gr.skip()] * (N_OUTPUTS + len(_control_names()) + int(with_lecture))]
        path = Path(file if isinstance(file, str) else file.name)
        session = guard(lambda: ws.load(path))
        return _loaded(ws, session, f"Loaded {path.name}.", with_lecture)

    return on_load, on_upload


# fmt: off
def on_save(ws, lecture, dataset, arch, latent_dim, hidden_dim, likelihood, gaussian_variance, gaussian_std,
            binarize, conditional, beta, kl_schedule, warmup_epochs, cycles, cycle_ratio, free_bits, lr,
            batch_size, epochs, grad_clip, seed, bottom_latent_dim, autoencoder):
    """The current model as a .safetensors file (config, history and optimizer state inside),
    with this session's settings and lecture mode, so that loading it sets the app up again."""
    s = {k: v for k, v in locals().items() if k not in ("ws", "lecture")}
    # fmt: on
    ws = workspace(ws)
    session, _ = restorable(s)  # only settings that pass the checks; a bad field is not saved
    if isinstance(lecture, bool):
        session["lecture"] = lecture
    folder = Path(tempfile.mkdtemp(prefix="vae-explorer-"))
    stem = ws.data.name.replace(":", "-").replace("/", "-")[:40]
    path = folder / f"vae-{stem}-epoch{ws.run.epoch}.safetensors"
    return ws, str(guard(lambda: ws.save(path, session=session)))


def on_open(ws):
    ws = workspace(ws)
    return [ws, *view(ws, note="Ready: press Start to train, or explore the loaded model.")]


def _model_controls() -> dict:
    c = {}
    with gr.Row():
        c["arch"] = gr.Radio(
            list(ARCHS),
            value="mlp",
            label="Architecture",
            info="MLP, small CNN, or hierarchical: two latent levels z₂ → z₁ → x",
            elem_id="train-arch",
        )
        c["likelihood"] = gr.Radio(
            list(LIKELIHOODS),
            value="bernoulli",
            label="Likelihood p(x|z)",
            info="Bernoulli for [0, 1] pixels",
        )
    c["latent_dim"] = gr.Slider(
        1, LIMITS.max_latent, value=2, step=1, label="Latent size", info="2 can be plotted directly"
    )
    c["bottom_latent_dim"] = gr.Slider(
        1,
        LIMITS.max_latent,
        value=16,
        step=1,
        label="Lower latent z₁ size",
        info="hierarchical only; the latent size above is the top z₂. Free bits ≥ 0.5 keep z₂ in use",
        visible=False,
        elem_id="train-bottom-latent",
    )
    c["hidden_dim"] = gr.Slider(
        8, LIMITS.max_hidden, value=400, step=8, label="Hidden size", info="units in each hidden layer"
    )
    with gr.Row():
        # min_width: on a narrow column the three wrap instead of clipping their labels.
        c["binarize"] = gr.Checkbox(False, label="Binarize", info="fresh 0/1 draw per batch", min_width=150)
        c["conditional"] = gr.Checkbox(
            False, label="Conditional", info="the label steers the decoder", min_width=150
        )
        c["autoencoder"] = gr.Checkbox(
            False,
            label="Plain autoencoder",
            info="z = μ, no KL: to compare (mlp or conv)",
            elem_id="train-autoencoder",
            min_width=150,
        )
    with gr.Accordion("Gaussian likelihood", open=False, elem_classes=["vx-advanced"]):
        c["gaussian_variance"] = gr.Radio(
            list(GAUSSIAN_VARIANCES),
            value="fixed",
            label="Variance",
            info="fixed σ, or one learned per pixel",
        )
        c["gaussian_std"] = gr.Number(0.1, label="σ", info="the fixed (or initial) pixel noise")
    return c


def _objective_controls() -> dict:
    c = {}
    with gr.Accordion("Objective: β, KL schedule, free bits", open=False):
        c["beta"] = gr.Slider(0.0, 50.0, value=1.0, step=0.1, label="β", info="KL weight; 1 = the ELBO")
        c["kl_schedule"] = gr.Radio(
            list(KL_SCHEDULES),
            value="constant",
            label="KL schedule",
            info="linear/cyclical warm β up from 0 (against collapse)",
        )
        c["warmup_epochs"] = gr.Slider(
            0, 100, value=10, step=1, label="Warm-up epochs", info="linear: epochs to reach β"
        )
        with gr.Row():
            c["cycles"] = gr.Slider(1, 20, value=4, step=1, label="Cycles", info="cyclical: how many")
            c["cycle_ratio"] = gr.Slider(
                0.05, 1.0, value=0.5, step=0.05, label="Rising part", info="cyclical: share of a cycle"
            )
        c["free_bits"] = gr.Slider(
            0.0,
            2.0,
            value=0.0,
            step=0.05,
            label="Free bits λ",
            info="nats per dimension the KL is not pushed below",
        )
    with gr.Accordion("Optimisation", open=True):
        c["epochs"] = gr.Slider(
            1,
            LIMITS.max_epochs,
            value=20,
            step=1,
            label="Epochs",
            info="passes over the training set",
            elem_id="train-epochs",
        )
        c["batch_size"] = gr.Slider(8, 512, value=128, step=8, label="Batch size", info="images per step")
        c["lr"] = gr.Number(1e-3, label="Learning rate", info="Adam; 1e-3 is a safe start")
        c["grad_clip"] = gr.Number(1.0, label="Gradient clip", info="max gradient norm; 0 = off")
        c["seed"] = gr.Number(0, precision=0, label="Seed", info="same seed, same run")
    return c


def _outputs() -> list:
    # The order is what a projector at 1280×720 must show first: the buttons and both curves.
    with gr.Row(elem_id="train-buttons"):
        start = gr.Button("Start", variant="primary", elem_id="train-start", min_width=80)
        cont = gr.Button("Continue", elem_id="train-continue", min_width=80)
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop", min_width=80)
        reset = gr.Button("Reset", elem_id="train-reset", min_width=80)
    status = gr.HTML(elem_id="train-progress", label="progress")
    with gr.Row():
        recon_plot = gr.Plot(elem_id="recon-plot", show_label=False, label="reconstruction")
        kl_plot = gr.Plot(elem_id="kl-plot", show_label=False, label="kl")
    diagnostics = gr.Markdown(elem_id="train-diagnostics", label="diagnostics")
    recon_img = gr.Image(
        label="Test inputs (top) and reconstructions (bottom)",
        elem_id="recon-images",
        interactive=False,
        format="png",
    )
    with gr.Row():
        samples_img = gr.Image(
            label="Samples from the prior",
            elem_id="train-samples",
            interactive=False,
            format="png",
        )
        # Redrawn after each epoch while training runs: the latent space forming.
        live_map = gr.Plot(elem_id="train-latent-map", show_label=False, label="latent map")
    with gr.Row():
        sched_plot = gr.Plot(elem_id="schedule-plot", show_label=False, label="schedule")
        dims_plot = gr.Plot(elem_id="kl-dims-plot", show_label=False, label="kl_per_dim")
    right = [status, diagnostics, recon_plot, kl_plot, sched_plot, dims_plot, recon_img, samples_img]
    right.append(live_map)
    return [start, cont, stop, reset, right]


def build(state: gr.State, lecture_box: gr.Checkbox | None = None) -> dict:
    """Lay out the tab inside the current gr.Blocks and wire its events. ``lecture_box``: the
    lecture-mode toggle, saved with a model and restored when it is loaded."""
    shipped = list(shipped_checkpoints())
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Accordion("Model file", open=False):
                ckpt = gr.Dropdown(
                    shipped,
                    value=DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in shipped else None,
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
                save_btn = gr.Button("Prepare download of this model and these settings", size="sm")
                download = gr.File(label="Download", interactive=False, elem_id="checkpoint-download")
            dataset = gr.Dropdown(
                _dataset_choices(),
                value="mnist-10k",
                label="Data set",
                info="mnist-10k: 10,000 real 28×28 digits, bundled; digits: 8×8, trains in a second",
            )
            c = {"dataset": dataset, **_model_controls(), **_objective_controls()}
            gr.Markdown(
                f"<small>Limits here: at most {LIMITS.max_epochs} epochs per run, "
                f"{LIMITS.max_train_images:,} training images, latent ≤ {LIMITS.max_latent}, "
                f"hidden ≤ {LIMITS.max_hidden}.</small>"
            )
        with gr.Column(scale=2):
            start, cont, stop, reset, right = _outputs()

    controls = [c[name] for name in list(inspect.signature(on_start).parameters)[1:]]
    c["arch"].change(
        lambda arch: gr.update(visible=arch == "hierarchical"),
        c["arch"],
        c["bottom_latent_dim"],
        api_visibility="private",
        queue=False,
    )
    lecture_out = [lecture_box] if lecture_box is not None else []
    loaded = [state, *right, *controls, *lecture_out]
    on_load, on_upload = _load_handlers(lecture_box is not None)
    train_kw = {"concurrency_limit": TRAIN_CONCURRENCY, "concurrency_id": "train", "show_progress": "hidden"}
    start_evt = start.click(on_start, [state, *controls], [state, *right], api_name="train", **train_kw)
    cont_evt = cont.click(
        on_continue, [state, *controls], [state, *right], api_name="continue_training", **train_kw
    )
    # Stop asks the trainer to end after its step (a clean, consistent model) and cancels this
    # session's Start/Continue: the browser also drops one still waiting in the queue.
    stop.click(
        on_stop,
        [state],
        [state, *right],
        api_name="stop",
        concurrency_limit=None,
        cancels=[start_evt, cont_evt],
    )
    reset.click(on_reset, [state, *controls], [state, *right], api_name="reset", concurrency_limit=None)
    load_btn.click(on_load, [state, ckpt], loaded, api_name="load_checkpoint", concurrency_limit=None)
    upload.upload(on_upload, [state, upload], loaded, api_name="upload_checkpoint", concurrency_limit=None)
    lecture_in = lecture_box if lecture_box is not None else gr.State(False)
    save_btn.click(
        on_save,
        [state, lecture_in, *controls],
        [state, download],
        api_name="save_checkpoint",
        concurrency_limit=None,
    )
    return {"on_open": (on_open, [state], [state, *right])}
