"""One step at a time (trainer.Trainer.steps, Workspace.step): stepping keeps the trainer's
guarantees — the same run as training straight through, one side of the model held exactly still,
Stop between steps, the NaN guard — and the lagging-encoder schedule (He et al. 2019)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import TrainConfig
from vae_explorer.evaluate import evaluate
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.session import Workspace
from vae_explorer.trainer import Trainer

CPU = torch.device("cpu")
TC = TrainConfig(epochs=2, batch_size=8, seed=3)  # 64 images: 8 steps an epoch


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stepping_then_run_is_the_run_straight_through(tiny_data, tiny_config):
    straight = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    full = [r for r in straight.run() if isinstance(r, EpochRecord)]
    stepped = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    recs = list(stepped.steps(3)) + list(stepped.steps(2))
    assert [r.step for r in recs] == [1, 2, 3, 4, 5] and stepped.progress.batches == 5
    rest = [r for r in stepped.run(epochs=2) if isinstance(r, EpochRecord)]  # finishes epoch 1, then one more
    assert _same(_weights(straight.model), _weights(stepped.model))
    assert [e.test_loss for e in rest] == [e.test_loss for e in full]
    assert stepped.step == straight.step == 16 and stepped.epoch == 2


def test_stepping_across_an_epoch_end_evaluates_it(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    recs = list(t.steps(10))
    epochs = [r for r in recs if isinstance(r, EpochRecord)]
    assert len(epochs) == 1 and epochs[0].step == 8 and t.epoch == 1
    assert sum(isinstance(r, StepRecord) for r in recs) == 10 and t.progress.batches == 2
    # The record sits right after the epoch's 8th step, and its averages are of those 8 steps.
    assert isinstance(recs[8], EpochRecord)
    steps = [r for r in recs[:8] if isinstance(r, StepRecord)]
    assert epochs[0].train_kl == pytest.approx(sum(s.kl for s in steps) / 8, rel=1e-6)


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_a_one_sided_step_holds_the_other_side_exactly_still(tiny_data, tiny_config, part):
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    list(t.steps(2))  # Adam has moments for every parameter now
    model = t.model
    held = {id(p) for p in model.side_parameters(inference=part == "decoder")}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    moments = {id(p): {k: v.clone() for k, v in t.optimizer.state[p].items()} for p in model.parameters()}
    (rec,) = list(t.steps(1, part))
    assert rec.part == part and not rec.skipped
    for name, p in model.named_parameters():
        moved = not torch.equal(before[name], p)
        assert moved == (id(p) not in held), name
        state = t.optimizer.state[p]
        if id(p) in held:  # Adam's moments and step count of the held side are untouched
            assert all(torch.equal(state[k], v) for k, v in moments[id(p)].items()), name


def test_a_decoder_step_leaves_every_kl_unchanged_and_an_encoder_step_changes_it(tiny_data, tiny_config):
    # KL(q(z|x) ‖ N(0, I)) is a function of the encoder alone: exactly equal after a decoder-only
    # step, different after an encoder-only one.
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    list(t.steps(2))

    def kl() -> list[float]:
        return evaluate(t.model, tiny_data.x_test, tiny_data.y_test, seed=0).kl_per_dim

    k0 = kl()
    list(t.steps(1, "decoder"))
    assert kl() == k0
    list(t.steps(1, "encoder"))
    assert kl() != k0


def test_hierarchical_sides_cover_every_parameter_once(tiny_config):
    cfg = dataclasses.replace(tiny_config, arch="hierarchical", bottom_latent_dim=4)
    model = build_model(cfg)
    q, p = model.side_parameters(True), model.side_parameters(False)
    names = {id(v): n.split(".")[0] for n, v in model.named_parameters()}
    assert {names[id(v)] for v in q} == {"trunk", "q_top", "q_bottom"}
    assert {names[id(v)] for v in p} == {"p_bottom", "decoder"}
    assert len(q) + len(p) == len(list(model.parameters()))


def test_stop_between_steps_and_the_nan_guard_hold_while_stepping(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    gen = t.steps(6)
    for rec in gen:
        if rec.step == 2:
            t.request_stop()
    assert isinstance(rec, StopRecord) and not rec.rolled_back and t.step == 2
    assert all(int(s["step"]) == 2 for s in t.optimizer.state.values())
    # Weights that overflow: every step is non-finite; max_bad_steps of them roll back and stop.
    cfg = dataclasses.replace(tiny_config, clamp_logvar=False)
    bad = Trainer(build_model(cfg, 3), tiny_data, dataclasses.replace(TC, max_bad_steps=3))
    init = _weights(bad.model)
    list(bad.steps(1))  # the epoch began (its snapshot is the initial weights) and one step was taken
    with torch.no_grad():
        for p in bad.model.parameters():
            p.fill_(1e30)
    recs = list(bad.steps(6))
    assert [r.skipped for r in recs[:3]] == [True] * 3
    assert isinstance(recs[-1], StopRecord) and recs[-1].rolled_back and len(recs) == 4
    assert _same(_weights(bad.model), init)  # rolled back to the epoch's start, before step 1
    assert bad.progress is None and bad.step == 0


def test_the_aggressive_schedule_trains_the_encoder_first(tiny_data, tiny_config):
    tc = dataclasses.replace(TC, encoder_steps=2, aggressive_epochs=1.0)
    t = Trainer(build_model(tiny_config, 3), tiny_data, tc)
    parts = [r.part for r in t.run() if isinstance(r, StepRecord)]
    assert parts[:8] == ["encoder", "encoder", "decoder"] * 2 + ["encoder", "encoder"]
    assert parts[8:] == ["both"] * 8  # after the aggressive epoch: joint steps
    # An explicit part overrides the schedule.
    t2 = Trainer(build_model(tiny_config, 3), tiny_data, tc)
    assert [r.part for r in t2.steps(3, "both")] == ["both"] * 3


def test_bad_steps_are_refused(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    with pytest.raises(ValueError, match="a step trains"):
        list(t.steps(1, "decoders"))
    ws = Workspace.from_shipped("digits-2d", device=CPU)
    with pytest.raises(ValueError, match="between 1 and"):
        list(ws.step(TC, 0))
    with pytest.raises(ValueError, match="between 1 and"):
        list(ws.step(TC, True))
    with pytest.raises(ValueError, match="a step trains"):
        list(ws.step(TC, 1, "everything"))
    with pytest.raises(ValueError, match="encoder_steps must be between 0 and 100"):
        TrainConfig(encoder_steps=-1)


def _digits(train_worker: bool) -> tuple[Workspace, TrainConfig]:
    tc = TrainConfig(epochs=1, batch_size=64, seed=4)
    ws = Workspace.from_shipped("digits-2d", device=CPU, train_worker=train_worker)
    ws.new_model("digits", tc, latent_dim=2, hidden_dim=64)
    return ws, tc


def test_steps_in_the_session_then_continue_in_a_worker_is_one_run():
    # The app steps in its own process and trains in a worker (worker.py): the epoch in progress,
    # the generators and Adam's state travel both ways, so the result is the run straight through.
    straight, tc = _digits(train_worker=False)
    list(straight.train(dataclasses.replace(tc, epochs=2)))
    ws, _ = _digits(train_worker=True)
    recs = list(ws.step(tc, 5)) + list(ws.step(tc, 2, "both"))
    assert [r.step for r in recs] == list(range(1, 8)) and ws.run_info().step == 7
    ws.begin_action()
    list(ws.train(tc))  # finishes epoch 1 in a worker
    assert ws.run.epoch == 1 and ws.run.step == 23  # 1,437 images / 64 = 23 batches
    list(ws.step(tc, 23))  # epoch 2, stepped in the session: the worker's generators came home
    assert _same(_weights(ws.model), _weights(straight.model))
    assert [e.test_loss for e in ws.run.history] == [e.test_loss for e in straight.run.history]
    assert len(ws.step_log) == 46


def test_steps_of_none_go_to_the_end_of_the_epoch(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config, 3), tiny_data, TC)
    list(t.steps(3))
    recs = list(t.steps(None))  # the epoch's other 5 batches, then its record
    assert sum(isinstance(r, StepRecord) for r in recs) == 5 and isinstance(recs[-1], EpochRecord)
    assert t.progress is None and t.epoch == 1
    assert sum(isinstance(r, StepRecord) for r in t.steps(None)) == 8  # between epochs: a whole one


def test_continue_with_other_epochs_after_stepping_finishes_the_same_epoch():
    # Only the batch size cuts an epoch into batches: another number of epochs (or β, or lr) keeps
    # the epoch in progress and, with the same seed, the batch order and the noise.
    ws, tc = _digits(train_worker=False)
    list(ws.step(tc, 5))
    ws.begin_action()
    recs = list(ws.train(dataclasses.replace(tc, epochs=2, lr=2e-3)))
    ends = [r.step for r in recs if isinstance(r, EpochRecord)]
    assert ends == [23, 46]  # the stepped epoch ends after its other 18 batches
    other, _ = _digits(train_worker=False)
    list(other.step(tc, 5))
    recs = list(other.train(dataclasses.replace(tc, batch_size=32)))  # other batches: a fresh epoch
    assert [r.step for r in recs if isinstance(r, EpochRecord)] == [5 + 45]


def test_aggressive_epochs_may_end_within_an_epoch(tiny_data, tiny_config):
    tc = dataclasses.replace(TC, encoder_steps=1, aggressive_epochs=0.5)  # the first 4 of 8 batches
    t = Trainer(build_model(tiny_config, 3), tiny_data, tc)
    parts = [r.part for r in t.steps(8) if isinstance(r, StepRecord)]
    assert parts[:4] == ["encoder", "decoder"] * 2 and parts[4:8] == ["both"] * 4


def test_continue_part_way_through_an_epoch_fills_the_progress_bar_to_its_end():
    # Continue after 5 of an epoch's 23 steps trains the other 18: the bar counts those, and ends full.
    from vae_explorer.ui.train_view import stream

    ws, tc = _digits(train_worker=False)
    list(ws.step(tc, 5))
    assert ws.carried_batches(tc) == 5 and ws.carried_batches(dataclasses.replace(tc, batch_size=32)) == 0
    ws.begin_action()
    updates = list(stream(ws, tc))
    assert ws.run.step == 23 and "Finished" in updates[-1][1]
    assert 'style="width:100.0%"' in updates[-1][1]
    assert ws.carried_batches(tc) == 0  # between epochs
