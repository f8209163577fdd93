"""The Train tab: every control the core offers, Start/Stop/Continue/Reset, live plots,
diagnostics in words, and checkpoints in and out. What it shows is built in train_view."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr

from ..checkpoint import shipped_checkpoints
from ..config import TrainConfig
from ..session import DEFAULT_CHECKPOINT
from ..settings import MODEL_KEYS, NAMES
from . import data_upload, export, ghost, share, step_view
from .common import LIMITS, TRAIN_CONCURRENCY, Refused, as_choice, guard, workspace
from .train_settings import by_name, control, parse_settings, restorable, takes_settings
from .train_view import N_OUTPUTS, stream, view


def _fresh(ws, s: dict) -> TrainConfig:
    dataset, model, tcfg = parse_settings(s, ws.datasets())
    if ws.is_training:
        raise Refused("Training is running in this session: stop it first.")
    guard(lambda: ws.new_model(dataset, tcfg, **model))
    return tcfg


# The three endpoints that take the controls see one parameter per setting (takes_settings):
# Gradio names API arguments after the handler's parameters.
def on_start(ws, *values):
    """Build a fresh model with these settings and train it, streaming progress."""
    ws = workspace(ws)
    ws.begin_action()
    yield from stream(ws, _fresh(ws, by_name(values)))


def on_continue(ws, *values):
    """Train the current model further with these training settings (its optimizer state is
    kept); the data set and model settings stay those of the current model."""
    ws = workspace(ws)
    ws.begin_action()
    ds, model, tcfg = parse_settings(by_name(values), ws.datasets())
    current = {k: getattr(ws.model.config, k) for k in MODEL_KEYS}
    note = (
        "Continuing the current model: data set and model settings apply on Start or Reset."
        if model != current or ds != ws.run.dataset
        else ""
    )
    yield from stream(ws, tcfg, note)


def on_reset(ws, *values):
    """Replace the model by a fresh, untrained one with these settings."""
    ws = workspace(ws)
    _fresh(ws, by_name(values))
    return [ws, *view(ws, note="A fresh, untrained model.")]


for _handler in (on_start, on_continue, on_reset):
    takes_settings(_handler, "ws")


def on_stop(ws):
    """Stop training after the current step; returns once it has stopped."""
    if ws is None:
        return [ws, *[gr.skip()] * N_OUTPUTS]
    ws.request_stop()
    deadline = time.perf_counter() + 10
    while ws.is_training and time.perf_counter() < deadline:
        time.sleep(0.02)
    return [ws, *view(ws, note="Stopped: the model is as it was after the last step.")]


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
    controls = [values.get(k, gr.skip()) for k in NAMES]
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
            return [ws, *[gr.skip()] * (N_OUTPUTS + len(NAMES) + int(with_lecture))]
        path = Path(file if isinstance(file, str) else file.name)
        session = guard(lambda: ws.load(path))
        return _loaded(ws, session, f"Loaded {path.name}.", with_lecture)

    return on_load, on_upload


def on_save(ws, lecture, *values):
    """The current model as a .safetensors file (config, history and optimizer state inside),
    with this session's settings and lecture mode, so that loading it sets the app up again."""
    s = by_name(values)
    ws = workspace(ws)
    session, _ = restorable(s)  # only settings that pass the checks; a bad field is not saved
    if isinstance(lecture, bool):
        session["lecture"] = lecture
    folder = Path(tempfile.mkdtemp(prefix="vae-explorer-"))
    stem = ws.data.name.replace(":", "-").replace("/", "-")[:40]
    path = folder / f"vae-{stem}-epoch{ws.run.epoch}.safetensors"
    return ws, str(guard(lambda: ws.save(path, session=session)))


takes_settings(on_save, "ws", "lecture")


def on_open(ws):
    ws = workspace(ws)
    return [ws, *view(ws, note="Ready: press Start to train, or explore the loaded model.")]


def _model_controls() -> dict:
    c = {}
    with gr.Row():
        c["arch"] = control("arch", elem_id="train-arch")
        c["likelihood"] = control("likelihood")
    c["latent_dim"] = control("latent_dim")
    c["bottom_latent_dim"] = control("bottom_latent_dim", visible=False, elem_id="train-bottom-latent")
    c["hidden_dim"] = control("hidden_dim")
    with gr.Row():
        # min_width: on a narrow column the three wrap instead of clipping their labels.
        c["binarize"] = control("binarize", min_width=150)
        c["conditional"] = control("conditional", min_width=150)
        c["autoencoder"] = control("autoencoder", elem_id="train-autoencoder", min_width=150)
    with gr.Accordion("Gaussian likelihood", open=False, elem_classes=["vx-advanced"]):
        c["gaussian_variance"] = control("gaussian_variance")
        c["gaussian_std"] = control("gaussian_std")
    return c


def _objective_controls() -> dict:
    c = {}
    with gr.Accordion("Objective: β, KL schedule, free bits", open=False):
        c["beta"] = control("beta")
        c["kl_schedule"] = control("kl_schedule")
        c["warmup_epochs"] = control("warmup_epochs")
        with gr.Row():
            c["cycles"] = control("cycles")
            c["cycle_ratio"] = control("cycle_ratio")
        c["free_bits"] = control("free_bits")
    with gr.Accordion("Optimisation", open=True):
        c["epochs"] = control("epochs", elem_id="train-epochs")
        c["batch_size"] = control("batch_size")
        c["lr"] = control("lr")
        c["grad_clip"] = control("grad_clip")
        c["seed"] = control("seed")
    return c


def _outputs() -> list:
    # The order is what a projector at 1280×720 must show first: the buttons and both curves.
    with gr.Row(elem_id="train-buttons"):
        start = gr.Button("Start", variant="primary", elem_id="train-start", min_width=80)
        cont = gr.Button("Continue", elem_id="train-continue", min_width=80)
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop", min_width=80)
        reset = gr.Button("Reset", elem_id="train-reset", min_width=80)
        stepping = step_view.build_buttons()  # one step at a time, or four a second
    status = gr.HTML(elem_id="train-progress", label="progress")
    with gr.Row():
        recon_plot = gr.Plot(elem_id="recon-plot", show_label=False, label="reconstruction")
        kl_plot = gr.Plot(elem_id="kl-plot", show_label=False, label="kl")
    stepping["part"] = step_view.build_part()  # which side Step and Slow train
    ghost.toggle()  # the previous run, faint on both plots and on the rate–distortion plane
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
    return [start, cont, stop, reset, stepping, right]


def build(state: gr.State, lecture_box: gr.Checkbox | None = None) -> dict:
    """Lay out the tab inside the current gr.Blocks and wire its events. ``lecture_box``: the
    lecture-mode toggle, saved with a model and restored when it is loaded."""
    shipped = list(shipped_checkpoints())
    with gr.Row():
        with gr.Column(scale=1, min_width=320) as left:
            with gr.Accordion("Model file and notebook", open=False):
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
                export.build(state)  # the session as a notebook that rebuilds it at home
            dataset = control("dataset")
            own = data_upload.build()  # your own images: a .zip or .npz becomes a choice here
            c = {"dataset": dataset, **_model_controls(), **_objective_controls()}
            gr.Markdown(
                f"<small>Limits here: at most {LIMITS.max_epochs} epochs per run, "
                f"{LIMITS.max_train_images:,} training images, latent ≤ {LIMITS.max_latent}, "
                f"hidden ≤ {LIMITS.max_hidden}.</small>"
            )
        with gr.Column(scale=2):
            start, cont, stop, reset, stepping, right = _outputs()

    controls = [c[name] for name in NAMES]
    data_upload.wire(own, state, dataset, c["batch_size"])
    with left:  # under the settings: this setup as a link (share.py)
        share.build_button(controls, lecture_box if lecture_box is not None else gr.State(False))
        export.svg_keeper()  # every plot's toolbar: SVG beside Plotly's PNG (an empty element)
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
    step_events = step_view.wire(stepping, state, controls, right)
    # Stop asks the trainer to end after its step (a clean, consistent model) and cancels this
    # session's Start/Continue/Slow: the browser also drops one still waiting in the queue.
    stop.click(
        on_stop,
        [state],
        [state, *right],
        api_name="stop",
        concurrency_limit=None,
        cancels=[start_evt, cont_evt, *step_events],
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
    return {"on_open": (on_open, [state], [state, *right]), "controls": controls}
