"""Faults a server survives: a save that fails half-way (disk full, permission denied, an
interrupt, the process killed), a tab closed mid-training, a session's workspace discarded
while it trains. After each, the old checkpoint is whole and the workspace trains again."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

import vae_explorer.checkpoint as ckpt_mod
from vae_explorer.build import build_model
from vae_explorer.checkpoint import load_checkpoint, save_checkpoint
from vae_explorer.config import ModelConfig, RunInfo, TrainConfig
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.session import Workspace

SMALL = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)
ROOT = Path(__file__).resolve().parents[1]


def _weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _adam_steps(optimizer) -> set[int]:
    return {int(s["step"]) for s in optimizer.state.values()}


@pytest.fixture
def old(tmp_path, tiny_config):
    """A checkpoint on disk, its bytes, and the model in it."""
    path = tmp_path / "m.safetensors"
    model = build_model(tiny_config, seed=1)
    save_checkpoint(path, model, RunInfo(step=1))
    return path, path.read_bytes(), model


class _HalfWritten:
    """The file object save_checkpoint writes through: writes half of the data, then fails."""

    calls = 0

    def __init__(self, real, fail):
        self.real, self.fail = real, fail

    def write(self, data):
        type(self).calls += 1
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise self.fail()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def _fail_mid_write(monkeypatch, fail):
    real_fdopen = os.fdopen
    _HalfWritten.calls = 0

    def fdopen(fd, *args, **kwargs):
        return _HalfWritten(real_fdopen(fd, *args, **kwargs), fail)

    monkeypatch.setattr(ckpt_mod.os, "fdopen", fdopen)


def _assert_old_file_intact(path: Path, before: bytes, model) -> None:
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
    ck = load_checkpoint(path)
    assert ck.run.step == 1 and _weights_equal(ck.model, model)


# ----------------------------------------------------------------------------- failed saves


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "No space left on device"), (errno.EIO, "Input/output error"), (errno.EDQUOT, "quota")],
)
def test_a_write_failing_half_way_keeps_the_old_checkpoint(code, words, old, monkeypatch, tiny_config):
    path, before, model = old
    _fail_mid_write(monkeypatch, lambda: OSError(code, os.strerror(code)))
    with pytest.raises(ValueError, match=rf"could not save .*{words}.*any earlier file there is unchanged"):
        save_checkpoint(path, build_model(tiny_config, seed=2), RunInfo(step=2))
    monkeypatch.undo()
    assert _HalfWritten.calls == 1  # the failure really happened inside the write
    _assert_old_file_intact(path, before, model)


@pytest.mark.parametrize("where", ["mkstemp", "replace"])
def test_permission_denied_is_a_clear_error_and_keeps_the_old_file(where, old, monkeypatch, tiny_config):
    path, before, model = old
    calls = []

    def denied(*args, **kwargs):
        calls.append(args)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    target = ckpt_mod.tempfile if where == "mkstemp" else ckpt_mod.os
    monkeypatch.setattr(target, where, denied)
    with pytest.raises(ValueError, match=r"could not save .*m\.safetensors \(Permission denied\)"):
        save_checkpoint(path, build_model(tiny_config, seed=2), RunInfo(step=2))
    monkeypatch.undo()
    assert calls
    _assert_old_file_intact(path, before, model)


def test_an_interrupt_during_the_write_propagates_and_keeps_the_old_checkpoint(old, monkeypatch, tiny_config):
    path, before, model = old
    _fail_mid_write(monkeypatch, KeyboardInterrupt)
    # The bare interrupt raised inside the write (no message): not swallowed, not turned into a
    # "could not save".
    with pytest.raises(KeyboardInterrupt, match=r"^$"):
        save_checkpoint(path, build_model(tiny_config, seed=2), RunInfo(step=2))
    monkeypatch.undo()
    _assert_old_file_intact(path, before, model)


KILL_DURING_SAVE = """
import os, signal, sys
import vae_explorer.checkpoint as ckpt
from vae_explorer.config import ModelConfig, RunInfo
from vae_explorer.build import build_model

path = sys.argv[1]
real_fdopen = os.fdopen

class Dying:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        print("half written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the power cut: no finally, no cleanup
    def __getattr__(self, name):
        return getattr(self.f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()

ckpt.os.fdopen = lambda fd, *a, **kw: Dying(real_fdopen(fd, *a, **kw))
model = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, num_classes=3), seed=2)
ckpt.save_checkpoint(path, model, RunInfo(step=2))
print("not reached", flush=True)
"""


@pytest.mark.slow
def test_a_process_killed_during_a_save_leaves_the_old_checkpoint_whole(old):
    path, before, model = old
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_DURING_SAVE), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert res.stdout.splitlines() == ["half written"]
    assert path.read_bytes() == before
    ck = load_checkpoint(path)
    assert ck.run.step == 1 and _weights_equal(ck.model, model)
    # What the kill left behind is a hidden temporary, never a file that looks like a checkpoint.
    others = [p for p in path.parent.iterdir() if p != path]
    assert len(others) == 1 and others[0].name.startswith(".m.safetensors.") and others[0].suffix == ".tmp"
    assert sorted(p.name for p in path.parent.glob("*.safetensors")) == ["m.safetensors"]
    # The next save over it works and cleans up after itself.
    save_checkpoint(path, build_model(model.config, seed=3), RunInfo(step=3))
    assert load_checkpoint(path).run.step == 3


def test_a_full_disk_is_a_clear_message_in_the_app_and_the_workspace_is_unharmed(monkeypatch, tmp_path):
    import gradio as gr

    from vae_explorer.ui.common import guard

    ws = Workspace.from_shipped(device=torch.device("cpu"))
    monkeypatch.setattr(ckpt_mod.os, "fsync", lambda *_: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")))
    with pytest.raises(gr.Error, match=r"Could not save .*; any earlier file there is unchanged") as info:
        guard(lambda: ws.save(tmp_path / "m.safetensors"))  # what the download handler does
    assert info.value.message.startswith("Could not save ") and "unchanged" in info.value.message
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    recs = list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    assert isinstance(recs[-1], EpochRecord)


# ----------------------------------------------------------------------------- training interrupted


def test_a_closed_tab_mid_epoch_leaves_a_consistent_model_that_trains_again():
    """Gradio closes the handler's generator when the tab goes away: Workspace.train's finally
    must end the session's training with the model and Adam in step."""
    ws = Workspace.from_shipped(device=torch.device("cpu"))
    ws.reset(SMALL, TrainConfig(), "digits")
    gen = ws.train(TrainConfig(epochs=3, batch_size=64))
    for rec in gen:
        if isinstance(rec, StepRecord) and rec.step == 7:  # mid-epoch (23 steps an epoch)
            break
    assert ws.is_training
    gen.close()
    assert not ws.is_training and ws.run.step == 7 and ws.run.epoch == 0
    assert _adam_steps(ws.trainer.optimizer) == {7}
    assert all(torch.isfinite(p).all() for p in ws.model.parameters())
    recs = list(ws.train(TrainConfig(epochs=3, batch_size=64)))  # the same settings: it continues
    # It goes on from step 7: the interrupted epoch's 16 other batches, then two more epochs.
    assert isinstance(recs[-1], EpochRecord) and ws.run.step == 3 * 23
    assert _adam_steps(ws.trainer.optimizer) == {ws.run.step}


def test_an_expired_session_stops_its_training_thread():
    """When a session's State expires, Gradio calls its delete_callback (close_workspace): a
    training still running in that workspace stops after its current step."""
    from vae_explorer.ui.common import close_workspace

    ws = Workspace.from_shipped(device=torch.device("cpu"))
    ws.reset(SMALL, TrainConfig(), "digits")
    records, started = [], threading.Event()

    def train():
        for rec in ws.train(TrainConfig(epochs=200, batch_size=16)):
            records.append(rec)
            started.set()

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    assert started.wait(60)
    close_workspace(ws)
    thread.join(60)
    assert not thread.is_alive() and not ws.is_training
    assert isinstance(records[-1], StopRecord) and not records[-1].rolled_back
    assert ws.run.step < 200 * 90
    close_workspace(None)  # a session that never built a workspace


def test_the_shipped_checkpoints_load_after_a_restart():
    """A fresh process (a restarted server) finds and loads every shipped model."""
    code = (
        "from vae_explorer.checkpoint import shipped_checkpoints\n"
        "from vae_explorer.session import Workspace\n"
        "names = sorted(shipped_checkpoints())\n"
        "for name in names:\n"
        "    ws = Workspace.from_shipped(name)\n"
        "    assert ws.model.config.input_shape == ws.data.image_shape\n"
        "print(' '.join(names))\n"
    )
    t0 = time.time()
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    names = res.stdout.split()
    assert {"digits-2d", "digits-conditional"} <= set(names), (names, time.time() - t0)
    assert not list((ROOT / "checkpoints").glob(".*.tmp"))  # nothing half-written among them
