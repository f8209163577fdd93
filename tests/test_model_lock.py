"""One session's model lock (vae_explorer/model_lock.py): a read waits for the running step and
gets in between two steps, a stop request reaches the running trainer (or one about to start)
until a new action clears it, and a session that is training refuses a second run and changes
to its model."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import make_dataset
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.model_lock import ModelLock
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.trainer import Trainer

TINY = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, num_classes=3)


def _trainer(epochs: int = 50) -> Trainer:
    """64 images in batches of 8: 8 steps an epoch, so 50 epochs are 400 steps."""
    return Trainer(build_model(TINY, seed=0), make_dataset(), TrainConfig(epochs=epochs, batch_size=8))


class _SlowSteps:
    """A stand-in trainer whose steps take a while and say when they begin and end."""

    def __init__(self, steps: int, log: list, started: threading.Event) -> None:
        self.steps, self.log, self.started = steps, log, started

    def run(self):
        for i in range(self.steps):
            self.log.append(("start", i))
            self.started.set()
            time.sleep(0.02)  # the step's work, under the lock
            self.log.append(("end", i))
            yield i

    def request_stop(self) -> None:
        pass


def test_a_read_waits_for_the_running_step_and_gets_in_between_steps():
    guard, log, started = ModelLock(), [], threading.Event()

    def reader() -> None:
        started.wait(5)
        for _ in range(3):
            with guard.reading():
                log.append(("read",))

    t = threading.Thread(target=reader)
    t.start()
    assert list(guard.run(_SlowSteps(10, log, started), lambda rec: None)) == list(range(10))
    t.join(5)
    assert not t.is_alive() and log.count(("read",)) == 3
    in_step = False
    for entry in log:
        if entry[0] == "start":
            in_step = True
        elif entry[0] == "end":
            in_step = False
        else:
            assert not in_step, log  # never half-way through a step
    # Fair to readers: the first read came while the run still had steps to take.
    assert log.index(("read",)) < log.index(("end", 9)), log


def test_request_stop_reaches_a_running_trainer():
    guard, trainer = ModelLock(), _trainer()
    records: list = []
    first_step = threading.Event()

    def train() -> None:
        for rec in guard.run(trainer, records.append):
            if isinstance(rec, StepRecord):
                first_step.set()

    t = threading.Thread(target=train)
    t.start()
    assert first_step.wait(30)
    assert guard.training
    guard.request_stop()
    t.join(30)
    assert not t.is_alive() and not guard.training
    assert isinstance(records[-1], StopRecord) and records[-1].reason == "Stopped by the user."
    assert trainer.step < 400 and not records[-1].rolled_back


def test_a_stop_before_the_run_is_honoured_until_a_new_action_begins():
    guard = ModelLock()
    guard.request_stop()  # pressed while the Start was still building its model
    recs = list(guard.run(_trainer(epochs=1), lambda rec: None))
    assert isinstance(recs[-1], StopRecord)
    assert len([r for r in recs if isinstance(r, StepRecord)]) <= 1
    guard.begin_action()  # the next action starts clean
    recs = list(guard.run(_trainer(epochs=1), lambda rec: None))
    assert isinstance(recs[-1], EpochRecord) and not any(isinstance(r, StopRecord) for r in recs)


def test_while_training_a_second_run_and_changes_are_refused_and_closing_the_run_ends_it():
    guard = ModelLock()
    guard.refuse_while_training()  # not training: nothing to refuse
    run = guard.run(_trainer(), lambda rec: None)
    assert isinstance(next(run), StepRecord) and guard.training
    with pytest.raises(ValueError, match=r"training is running in this session: stop it first\."):
        guard.refuse_while_training()
    with pytest.raises(ValueError, match=r"this session is already training; stop it first\."):
        next(guard.run(_trainer(), lambda rec: None))
    run.close()  # what Gradio does when the tab closes
    assert not guard.training
    # The lock is free again for any thread.
    assert _other_thread_can_take(guard.lock)
    guard.refuse_while_training()


def _other_thread_can_take(lock) -> bool:
    """Whether another thread gets ``lock`` right now (without waiting)."""
    got = []

    def take() -> None:
        ok = lock.acquire(blocking=False)
        got.append(ok)
        if ok:
            lock.release()

    t = threading.Thread(target=take)
    t.start()
    t.join(10)
    return got == [True]


def test_on_record_sees_every_record_under_the_lock():
    guard, seen = ModelLock(), []

    def on_record(rec) -> None:
        # Held while the bookkeeping runs: no read can see a step half-recorded.
        seen.append((rec, _other_thread_can_take(guard.lock)))

    recs = list(guard.run(_trainer(epochs=1), on_record))
    assert [r for r, _ in seen] == recs and not any(free for _, free in seen)
    assert isinstance(recs[-1], EpochRecord) and len(recs) == 9  # 8 steps and the epoch
    assert _other_thread_can_take(guard.lock)  # and released once the run is over
