"""Workspace: one user's model, optimizer, history and caches behind one lock."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vae_explorer import session as session_mod
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.limits import Limits
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.session import Workspace

SMALL = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)


@pytest.fixture
def ws():
    return Workspace.from_shipped("digits-2d", device=torch.device("cpu"))


def test_starts_from_the_shipped_model(ws):
    assert ws.data.name == "digits" and ws.model.latent_dim == 2 and ws.run.epoch > 0
    assert ws.trainer is None and not ws.is_training


def test_reset_then_train_then_continue_keeps_the_optimizer(ws):
    ws.reset(SMALL, TrainConfig(epochs=1, batch_size=64), "digits")
    assert ws.run.epoch == 0 and ws.step_log == []
    recs = list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    assert isinstance(recs[-1], EpochRecord) and ws.run.epoch == 1
    trainer = ws.trainer
    list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    assert ws.trainer is trainer and ws.run.epoch == 2 and ws.run.step == 46
    # A changed setting (learning rate) builds a new trainer that keeps Adam's moments.
    list(ws.train(TrainConfig(epochs=1, batch_size=64, lr=5e-4)))
    assert ws.trainer is not trainer and ws.run.epoch == 3
    assert all(int(s["step"]) == 69 for s in ws.trainer.optimizer.state.values())
    assert [r.step for r in ws.step_log] == list(range(1, 70))


def test_a_second_training_in_the_same_session_is_refused(ws):
    gen = ws.train(TrainConfig(epochs=1, batch_size=64))
    next(gen)
    with pytest.raises(ValueError, match="already training"):
        next(ws.train(TrainConfig(epochs=1, batch_size=64)))
    gen.close()
    assert not ws.is_training
    assert isinstance(next(ws.train(TrainConfig(epochs=1, batch_size=64))), StepRecord)


def test_decodes_between_steps_while_training_in_another_thread(ws):
    ws.reset(SMALL, TrainConfig(epochs=30, batch_size=16), "digits")
    errors, decodes = [], []

    def train():
        try:
            for _ in ws.train(TrainConfig(epochs=30, batch_size=16)):
                pass
        except Exception as err:
            errors.append(err)

    t = threading.Thread(target=train)
    t.start()
    while t.is_alive() and len(decodes) < 50:
        img = ws.decode([[0.3, -0.2]])
        decodes.append(img)
        assert torch.isfinite(img).all() and img.shape == (1, 1, 8, 8)
    ws.request_stop()
    t.join(timeout=60)
    assert not t.is_alive() and not errors and len(decodes) == 50
    assert isinstance(ws.last_stop, StopRecord) and not ws.last_stop.rolled_back


def test_step_log_is_thinned_but_spans_the_run(ws, monkeypatch):
    monkeypatch.setattr(session_mod, "MAX_STEP_LOG", 50)
    ws.reset(SMALL, TrainConfig(epochs=3, batch_size=16), "digits")
    list(ws.train(TrainConfig(epochs=3, batch_size=16)))  # 270 steps
    steps = [r.step for r in ws.step_log]
    assert len(steps) <= 50 and steps == sorted(steps) and steps[0] == 1 and steps[-1] > 250


def test_a_bad_file_leaves_the_model_as_it_was(ws, tmp_path):
    before = {k: v.clone() for k, v in ws.model.state_dict().items()}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="pickle"):
        ws.load(bad)
    assert all(torch.equal(before[k], v) for k, v in ws.model.state_dict().items())


def test_save_and_load_round_trip_with_training_state(ws, tmp_path):
    ws.reset(SMALL, TrainConfig(epochs=1, batch_size=64), "digits")
    list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    path = ws.save(tmp_path / "m.safetensors")
    other = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    other.load(path)
    assert other.run.epoch == 1 and other.run.step == 23 and other._optimizer_state is not None
    x = ws.data.x_test[:4]
    assert torch.equal(other.model.encode(x).mean, ws.model.encode(x).mean)


def test_max_train_images_limits_the_data(monkeypatch):
    ws = Workspace.from_shipped("digits-2d", limits=Limits(max_train_images=100), device=torch.device("cpu"))
    assert len(ws.data.x_train) == 100 and len(ws.data.x_test) == 360


def test_reset_and_load_are_refused_while_training(ws, tmp_path):
    path = ws.save(tmp_path / "m.safetensors")
    gen = ws.train(TrainConfig(epochs=1, batch_size=64))
    next(gen)
    with pytest.raises(ValueError, match="stop it first"):
        ws.reset(SMALL, TrainConfig(), "digits")
    with pytest.raises(ValueError, match="stop it first"):
        ws.load(path)
    gen.close()
    ws.load(path)  # fine once training has ended


def test_a_stop_pressed_before_training_starts_is_honoured(ws):
    ws.begin_action()  # a Start begins...
    ws.request_stop()  # ...and Stop is pressed while it is still building its model
    recs = list(ws.train(TrainConfig(epochs=5, batch_size=64)))
    assert isinstance(recs[-1], StopRecord) and ws.trainer.step == ws.run.step
    assert len([r for r in recs if isinstance(r, StepRecord)]) <= 1
    ws.begin_action()  # the next action starts clean
    assert isinstance(list(ws.train(TrainConfig(epochs=1, batch_size=64)))[-1], EpochRecord)


def test_saving_right_after_a_load_keeps_the_optimizer_state(ws, tmp_path):
    list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    first = ws.save(tmp_path / "a.safetensors")
    other = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    other.load(first)
    second = other.save(tmp_path / "b.safetensors")
    from vae_explorer.checkpoint import load_checkpoint

    a, b = load_checkpoint(first).optimizer_state, load_checkpoint(second).optimizer_state
    assert b is not None and a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][i]["exp_avg"], b["state"][i]["exp_avg"]) for i in a["state"])


def test_models_over_the_limits_or_from_unregistered_data_are_refused(ws, tmp_path):
    import dataclasses

    from vae_explorer.build import build_model
    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import RunInfo

    big = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=100, hidden_dim=16))
    save_checkpoint(tmp_path / "big.safetensors", big, RunInfo("digits"))
    with pytest.raises(ValueError, match="at most 64 dimensions"):
        ws.load(tmp_path / "big.safetensors")
    probe = tmp_path / "probe.safetensors"
    save_checkpoint(probe, build_model(SMALL), dataclasses.replace(RunInfo(), dataset="npz:/etc/passwd"))
    with pytest.raises(ValueError, match="only mnist-10k, digits"):
        ws.load(probe)


def test_a_rollback_removes_its_steps_from_the_plots(ws):
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=64, clamp_logvar=False)
    ws.reset(cfg, TrainConfig(), "digits")
    recs = list(ws.train(TrainConfig(epochs=3, batch_size=64, lr=10.0, grad_clip=0.0)))
    assert isinstance(recs[-1], StopRecord) and recs[-1].rolled_back
    assert all(r.step <= ws.run.step for r in ws.step_log)


def test_a_loaded_model_never_reuses_the_previous_models_map(ws, tmp_path):
    first, _ = ws.projection("pca", 200)
    before = ws.version
    from vae_explorer.checkpoint import shipped_checkpoints

    ws.load(shipped_checkpoints()["digits-conditional"])
    second, _ = ws.projection("pca", 200)
    # A new version: everything keyed by it (the map, the UI's remembered clicks) starts afresh.
    assert not np.allclose(first.coords, second.coords) and ws.version > before
    with pytest.raises(ValueError, match="2 numbers per point"):
        ws.decode(np.zeros((2, 5), dtype=np.float32))
