"""One step at a time, on the Train tab: Step takes one optimiser step, Slow a few a second,
and either may train only the encoder or only the decoder (the other held still), so a class can
watch what one step does to the KL. The steps are the trainer's own (Workspace.step): Stop, the
NaN guard and Continue work as in a run."""

from __future__ import annotations

import time

import gradio as gr

from ..records import EpochRecord, StepRecord, StopRecord
from ..session import Workspace
from .common import Refused, as_choice, guard, sentence, workspace
from .train_settings import by_name, parse_settings, takes_settings
from .train_view import LIVE_MAP_POINTS, view

SLOW_EVERY = 0.25  # seconds between two Slow steps: four a second, slow enough to watch the KL move
SLOW_MOST = 240  # steps one Slow press takes at most (a minute), to the epoch's end if sooner
# Step and Slow run in the server's process (light), and Slow mostly sleeps: a queue of their own.
STEP_CONCURRENCY = 4
PARTS = [("Both", "both"), ("Encoder only", "encoder"), ("Decoder only", "decoder")]
WHAT = {"both": "", "encoder": " (encoder only)", "decoder": " (decoder only)"}


def _probe_kl(ws: Workspace) -> float | None:
    """KL(q(z|x) ‖ p(z)) of the top latent, mean over the live map's test images, nats (None for
    an autoencoder, whose code is a point). It depends on the encoder alone: a decoder-only step
    leaves it exactly as it was."""
    if ws.model.config.autoencoder:
        return None
    return float(ws.test_posteriors(LIVE_MAP_POINTS).q.kl().sum(dim=1).mean())


def _note(ws: Workspace, rec: StepRecord, before: float | None) -> str:
    if rec.skipped:
        return f"Step {rec.step + 1} was not finite and was skipped."
    text = f"Step {rec.step}{WHAT[rec.part]}: on its batch, loss {rec.loss:.2f}"
    after = _probe_kl(ws)
    if after is None or before is None:  # an autoencoder: its loss is the reconstruction alone
        return text + " nats."
    n = len(ws.test_posteriors(LIVE_MAP_POINTS).q)
    which = "the top level's q(z₂|x)" if ws.model.config.arch == "hierarchical" else "q(z|x)"
    return (
        f"{text}, KL {rec.kl:.2f} nats. KL of {which} on {n} test images: "
        f"{before:.3f} → {after:.3f} nats ({after - before:+.3f})."
    )


def _steps(ws: Workspace, values: tuple, part: str, n: int | None, most: int | None = None):
    """Take ``n`` steps of ``part`` (None: to the epoch's end; at most ``most``), yielding
    (record, note) after each."""
    part = as_choice(part, "Step trains", [p for _, p in PARTS])
    _, _, tcfg = parse_settings(by_name(values), ws.datasets())
    ws.begin_action()
    taken = 0
    try:
        before = _probe_kl(ws)
        for rec in guard(lambda: ws.step(tcfg, n, part)):
            if isinstance(rec, StepRecord):
                note = _note(ws, rec, before)
                before = _probe_kl(ws)
                taken += 1
                if most is not None and taken >= most:
                    ws.request_stop()  # honoured before the next step: this one is shown first
                yield rec, note
            elif isinstance(rec, EpochRecord):
                yield rec, f"Epoch {rec.epoch} finished: test −ELBO {rec.test_loss:.2f} nats."
            elif isinstance(rec, StopRecord):
                if rec.rolled_back:
                    yield rec, "Stopped: the weights were rolled back."
                elif most is not None and taken >= most:
                    yield rec, f"Slow ends after {most} steps; press it again to go on."
                else:
                    yield rec, "Stopped."
                return
    except ValueError as err:  # e.g. already training in this session
        raise Refused(sentence(str(err))) from None


def on_step(ws, part, *values):
    """One optimiser step of the current model (``part``: "both", "encoder" or "decoder"), with
    these training settings; the plots, images and live map show the model after it."""
    ws = workspace(ws)
    notes = [note for _, note in _steps(ws, values, part, 1)] or ["No step was taken."]
    return [ws, *view(ws, note=" ".join(notes), long_note=True)]


def on_slow(ws, part, *values):
    """Steps of ``part`` at four a second, each shown as it happens, to the end of the epoch in
    progress (a whole one between epochs), at most SLOW_MOST of them, or until Stop."""
    ws = workspace(ws)
    yield [
        ws,
        *view(ws, note="Slow: four steps a second to the end of the epoch. Stop ends it."),
    ]
    last = time.perf_counter()
    for rec, note in _steps(ws, values, part, None, SLOW_MOST):
        yield [ws, *view(ws, note=note, images=not isinstance(rec, StopRecord), long_note=True)]
        # The pause is taken between steps, outside the model's lock: reads go on meanwhile.
        time.sleep(max(0.0, SLOW_EVERY - (time.perf_counter() - last)))
        last = time.perf_counter()


for _handler in (on_step, on_slow):
    takes_settings(_handler, "ws", "part")


def build_buttons() -> dict:
    """Step and Slow, in the row of Start/Continue/Stop/Reset (a projector shows them first)."""
    step = gr.Button("Step", elem_id="train-step", min_width=70)
    slow = gr.Button("Slow", elem_id="train-slow", min_width=70)
    return {"step": step, "slow": slow}


def build_part() -> gr.Radio:
    """Which side a step trains, under the curves whose KL it moves (above them it would push the
    curves below a projector's fold)."""
    return gr.Radio(
        PARTS, value="both", label="Step and Slow train (the rest held still)", elem_id="step-part"
    )


def wire(row: dict, state, controls: list, right: list) -> list:
    """Wire Step and Slow; returns their events, for Stop to cancel. They have a queue of their own:
    a Slow press, which mostly waits, must not hold the server's training slot for a minute."""
    inputs, outputs = [state, row["part"], *controls], [state, *right]
    train_kw = {"concurrency_limit": STEP_CONCURRENCY, "concurrency_id": "step", "show_progress": "hidden"}
    step = row["step"].click(on_step, inputs, outputs, api_name="step", **train_kw)
    slow = row["slow"].click(on_slow, inputs, outputs, api_name="slow", **train_kw)
    return [step, slow]
