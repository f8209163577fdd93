"""The Failure lab tab: one click trains a classic failure and then its fix, side by side, with
the symptom, the cause and the fix in words, and the detector's verdict for each run."""

from __future__ import annotations

import time

import gradio as gr

from .. import lab
from ..records import StepRecord
from . import plots
from .common import TRAIN_CONCURRENCY, Refused, as_choice, sentence, why, workspace
from .train_view import image_grids

CHOICES = [(p.title, p.name) for p in lab.PRESETS.values()]
SAMPLES = "Samples from the prior"


def explain(name) -> str:
    p = lab.PRESETS[as_choice(name, "Preset", list(lab.PRESETS))]
    return f"**Symptom.** {p.symptom}\n\n" + why(
        f"**Cause.** {p.cause}\n\n**Fix.** {p.fix}", "the cause and the fix"
    )


def _verdict(ws, preset, label: str) -> str:
    fired = lab.fired(ws, preset)
    h = ws.run.history[-1] if ws.run.history else None
    stop = ws.last_stop
    lines = [f"### {label}: {'the failure shows' if fired else 'no failure detected'}"]
    if stop and stop.rolled_back:
        lines.append(f"Stopped at step {stop.step}: {stop.reason}")
    if h:
        lines.append(
            f"test −ELBO {h.test_loss:.2f} nats · KL {h.test_kl:.2f} · active units "
            f"{h.active_units}/{len(h.kl_per_dim)} · prior gap {h.prior_gap:.2f} · "
            f"sharpness {h.sharpness:.2f} · skipped steps {h.skipped_steps}"
        )
        if h.mutual_info == h.mutual_info:  # measured (not NaN)
            lines.append(
                f"the KL splits into I(x; z) = {h.mutual_info:.2f} nats (what z says about which "
                f"image it encodes) + KL(q(z) ‖ p(z)) = {h.marginal_kl:.2f}"
            )
    return "\n\n".join(lines)


def on_run(ws, name):
    """Train the preset's failure run, then its fix run (replacing this session's model)."""
    ws = workspace(ws)
    preset = lab.PRESETS[as_choice(name, "Preset", list(lab.PRESETS))]
    if ws.is_training:
        raise Refused("Training is running in this session: stop it first.")
    panels: list = [gr.skip()] * 8
    for side, (label, run) in enumerate((("Failure", preset.failure), ("Fix", preset.repaired))):
        last = 0.0
        try:
            for rec in lab.train(ws, run):
                now = time.perf_counter()
                if isinstance(rec, StepRecord) and now - last > 1.0:
                    last = now
                    panels[4 * side] = (
                        f"Training the {label.lower()} run… epoch {rec.epoch + 1}/{run.train.epochs}"
                    )
                    yield [ws, *panels]
        except ValueError as err:
            raise Refused(sentence(str(err))) from None
        recon, samples = image_grids(ws, per_row=6)  # half the page: 6 a row stay ≥ 84 px
        panels[4 * side : 4 * side + 4] = [
            _verdict(ws, preset, label),
            plots.kl_figure(ws.step_log, ws.run.history),
            recon,
            samples,
        ]
        yield [ws, *panels]


def build(state: gr.State) -> None:
    gr.Markdown(
        "Each preset trains a small model twice on 28×28 MNIST in seconds, once with a classic "
        "failure and once with its fix, judged by the Train tab's own detector. Running a preset "
        "replaces this session's model."
    )
    with gr.Row():
        preset = gr.Dropdown(CHOICES, value=CHOICES[0][1], label="Failure", elem_id="lab-preset", scale=2)
        run = gr.Button("Run the failure, then the fix", variant="primary", elem_id="lab-run", scale=1)
    text = gr.Markdown(explain(CHOICES[0][1]), elem_id="lab-explain")
    outs = []
    with gr.Row():
        for side in ("failure", "fix"):
            with gr.Column():
                outs.append(gr.Markdown(elem_id=f"lab-{side}-verdict"))
                outs.append(gr.Plot(show_label=False, elem_id=f"lab-{side}-kl"))
                for what, label in (("recon", "Test inputs and reconstructions"), ("samples", SAMPLES)):
                    outs.append(
                        gr.Image(label=label, interactive=False, format="png", elem_id=f"lab-{side}-{what}")
                    )
    preset.change(explain, [preset], [text], api_visibility="private", concurrency_limit=None)
    run.click(
        on_run,
        [state, preset],
        [state, *outs],
        api_name="lab_run",
        concurrency_limit=TRAIN_CONCURRENCY,
        concurrency_id="train",
        show_progress="minimal",
    )
