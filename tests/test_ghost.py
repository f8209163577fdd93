"""The last run as a ghost: a new model keeps the run it replaced, and the Train plots and the
rate–distortion plane draw it faintly."""

from __future__ import annotations

import json

import pytest
import torch

from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.session import Workspace
from vae_explorer.ui import ghost, plots, rd_view

SMALL = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)
RUN = TrainConfig(epochs=2, batch_size=64)


@pytest.fixture
def ws():
    return Workspace.from_shipped("digits-2d", device=torch.device("cpu"))


def test_a_new_model_keeps_the_run_it_replaced(ws):
    shipped = list(ws.run.history)
    ws.reset(SMALL, RUN, "digits")  # the shipped model's run (epochs, no steps) is the previous one
    assert ws.previous_run.history == shipped and ws.previous_run.steps == []
    list(ws.train(RUN))
    first_steps, first_history = list(ws.step_log), list(ws.run.history)
    assert len(first_history) == 2
    ws.reset(SMALL, TrainConfig(epochs=1, beta=4.0), "digits")
    assert ws.previous_run.steps == first_steps and ws.previous_run.history == first_history
    assert ws.previous_run.dataset == "digits"
    ws.reset(SMALL, RUN, "digits")  # an untrained model replaced: the trained run stays the ghost
    assert ws.previous_run.history == first_history


def test_the_plots_draw_the_previous_run_faintly_in_one_legend_group(ws):
    ws.reset(SMALL, RUN, "digits")
    list(ws.train(RUN))
    ws.reset(SMALL, RUN, "digits")
    list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    prev = ws.previous_run
    for make, attr, key in ((plots.recon_figure, "recon", "test_recon"), (plots.kl_figure, "kl", "test_kl")):
        fig = json.loads(make(ws.step_log, ws.run.history, ghost.traces(prev, "digits", attr, key)).plot)
        faint = [t for t in fig["data"] if t.get("legendgroup") == ghost.GROUP]
        assert [t["uid"] for t in faint] == [f"ghost-{attr}-steps", f"ghost-{attr}-test"]
        assert [t["showlegend"] for t in faint] == [True, False]  # one legend entry toggles both
        assert faint[1]["y"] == [getattr(h, key) for h in prev.history]
        assert fig["layout"]["uirevision"] == plots.UIREVISION  # a hidden ghost stays hidden
    # only as far as the current run goes: a longer run before it does not squeeze this one
    short = ghost.traces(prev, "digits", "recon", "test_recon", until=prev.history[0].step)
    assert max(short[0]["x"]) <= prev.history[0].step and short[1]["x"] == [prev.history[0].step]
    # a previous run on another data set is not comparable: nothing is drawn
    assert ghost.traces(prev, "mnist-10k", "recon", "test_recon") == []
    plane = json.loads(rd_view.plane_value(ws))
    assert plane["previous"] == [[round(h.test_kl, 4), round(h.test_recon, 3)] for h in prev.history]


def test_a_reset_refused_while_training_leaves_the_ghost_as_it_was(ws):
    ws.reset(SMALL, RUN, "digits")
    before = ws.previous_run
    list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    ws.guard._running = object()  # as while a run is going
    try:
        with pytest.raises(ValueError, match="training is running"):
            ws.reset(SMALL, RUN, "digits")
    finally:
        ws.guard._running = None
    assert ws.previous_run is before


def test_a_history_holding_infinities_still_draws_a_plane(ws):
    import dataclasses
    import math

    ws.run.history[-1] = dataclasses.replace(ws.run.history[-1], test_kl=math.inf)
    ws.run.history[0] = dataclasses.replace(ws.run.history[0], test_recon=math.nan)
    text = rd_view.plane_value(ws)
    assert "Infinity" not in text and "NaN" not in text
    plane = json.loads(text)
    assert len(plane["run"]) == len(ws.run.history) - 2 and all(map(math.isfinite, plane["bounds"]))
