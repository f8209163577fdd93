"""Training in a worker process (the app's way): the same model, records and guarantees as
training in the caller's thread — Stop, Continue, NaN rollback, checkpoints saved mid-run,
decoding while training — with the training in another process at a lower CPU priority."""

from __future__ import annotations

import os

import pytest
import torch

from vae_explorer import worker
from vae_explorer.checkpoint import load_checkpoint
from vae_explorer.config import TrainConfig
from vae_explorer.dataset import ImageDataset
from vae_explorer.lab import PRESETS
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.session import Workspace
from vae_explorer.worker import ProcessTrainer

CPU = torch.device("cpu")
TRAIN = TrainConfig(epochs=2, batch_size=64, seed=4)


def _workspace(train_worker: bool, **model) -> Workspace:
    ws = Workspace.from_shipped("digits-2d", device=CPU, train_worker=train_worker)
    ws.new_model("digits", TRAIN, **({"latent_dim": 2, "hidden_dim": 64} | model))
    return ws


def _same_weights(a: Workspace, b: Workspace) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_worker_trains_exactly_the_model_the_thread_trains_and_continues_alike():
    remote, local = _workspace(True), _workspace(False)
    for _ in range(2):  # Start, then Continue with the same settings
        got = [r for r in remote.train(TRAIN) if isinstance(r, EpochRecord)]
        want = [r for r in local.train(TRAIN) if isinstance(r, EpochRecord)]
        assert isinstance(remote.trainer, ProcessTrainer)
        assert [r.test_loss for r in got] == [r.test_loss for r in want]
        assert _same_weights(remote, local)
    assert remote.run.epoch == 4 and remote.run.step == local.run.step == 4 * 23
    assert not remote.trainer._proc.is_alive()  # the worker ended with its run


def test_stop_keeps_the_last_step_and_continue_goes_on_from_it(tmp_path):
    ws = _workspace(True)
    seen = []
    for rec in ws.train(TrainConfig(epochs=200, batch_size=64, seed=4)):
        seen.append(rec)
        if len(seen) == 40:
            ws.request_stop()
    assert isinstance(seen[-1], StopRecord) and not seen[-1].rolled_back
    assert seen[-1].step == ws.run.step and ws.run.step < 200 * 23
    # The session's model is the worker's model after that step: a saved file agrees with Adam's
    # own step count, and continuing trains on from it.
    ck = load_checkpoint(ws.save(tmp_path / "stopped.safetensors"))
    assert {int(s["step"]) for s in ck.optimizer_state["state"].values()} == {ws.run.step}
    assert all(torch.equal(v, ws.model.state_dict()[k]) for k, v in ck.model.state_dict().items())
    ws.begin_action()
    epochs = [
        r for r in ws.train(TrainConfig(epochs=200, batch_size=64, seed=4)) if isinstance(r, EpochRecord)
    ]
    assert epochs  # it went on (and it was not stopped by the old Stop)


def test_a_checkpoint_saved_while_training_is_one_consistent_step(tmp_path):
    ws = _workspace(True)
    for i, _rec in enumerate(ws.train(TrainConfig(epochs=50, batch_size=64, seed=4))):
        if i == 30:
            path = ws.save(tmp_path / "mid.safetensors")
            ws.request_stop()
    ck = load_checkpoint(path)
    steps = {int(s["step"]) for s in ck.optimizer_state["state"].values()}
    assert steps == {ck.run.step} and ck.run.step > 0  # Adam's moments belong to these weights
    assert ck.run.epoch == len(ck.run.history)


def test_nan_rollback_in_a_worker_is_the_rollback_in_a_thread():
    failure = PRESETS["nan"].failure  # the failure lab's NaN run
    runs = []
    for train_worker in (True, False):
        ws = Workspace.from_shipped("digits-2d", device=CPU, train_worker=train_worker)
        ws.new_model(failure.dataset, failure.train, **failure.model)
        runs.append((ws, [r for r in ws.train(failure.train) if isinstance(r, StopRecord)]))
    (remote, stops), (local, want) = runs
    assert len(stops) == 1 and stops[0].rolled_back
    assert stops[0].step == want[0].step == remote.run.step
    assert _same_weights(remote, local)
    assert all(bool(torch.isfinite(v).all()) for v in remote.model.state_dict().values())


def test_decoding_while_a_worker_trains_sees_the_weights_move():
    ws = _workspace(True)
    z = torch.zeros(1, 2)
    images, versions = [], []
    for i, _rec in enumerate(ws.train(TrainConfig(epochs=6, batch_size=64, seed=4))):
        if i % 25 == 0:
            with ws.guard.reading():
                images.append(ws.model.mean_image(ws.model.decode(z)))
                versions.append(ws.version)
    assert versions == sorted(versions) and len(set(versions)) > 2
    assert all(bool(torch.isfinite(im).all()) for im in images)
    assert not torch.equal(images[0], images[-1])  # the server's copy followed the training


def test_the_worker_runs_at_a_lower_cpu_priority(monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_TRAIN_NICE", "7")
    ws = _workspace(True)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for rec in ws.train(TrainConfig(epochs=3, batch_size=64, seed=4)):
        if isinstance(rec, StepRecord) and rec.step == 30:
            theirs = os.getpriority(os.PRIO_PROCESS, ws.trainer._proc.pid)
    assert theirs == min(19, mine + 7)


def test_a_failure_in_the_worker_is_a_sentence_not_a_hang(tmp_path):
    ws = _workspace(False)
    d = ws.data
    # A data set the worker cannot load (its file is gone by the time the worker starts).
    gone = ImageDataset(
        f"npz:{tmp_path / 'gone.npz'}", d.x_train, d.y_train, d.x_test, d.y_test, d.class_names
    )
    trainer = ProcessTrainer(ws.model, gone, TRAIN)
    with pytest.raises(ValueError, match=r"training failed: .*gone\.npz"):
        list(trainer.run())


@pytest.mark.parametrize(
    ("name", "raw", "call", "match"),
    [
        ("VAE_EXPLORER_TRAIN_WORKER", "yes", worker.enabled, "must be 0 or 1"),
        ("VAE_EXPLORER_TRAIN_NICE", "20", worker.nice_level, "from 0 to 19"),
        ("VAE_EXPLORER_TRAIN_NICE", "-1", worker.nice_level, "from 0 to 19"),
    ],
)
def test_bad_settings_are_refused_with_a_sentence(monkeypatch, name, raw, call, match):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=match):
        call()


def test_the_settings_default_to_a_worker_at_the_servers_priority(monkeypatch):
    monkeypatch.delenv("VAE_EXPLORER_TRAIN_WORKER", raising=False)
    monkeypatch.delenv("VAE_EXPLORER_TRAIN_NICE", raising=False)
    assert worker.enabled() and worker.nice_level() == 0
    monkeypatch.setenv("VAE_EXPLORER_TRAIN_WORKER", "0")
    assert not worker.enabled()
