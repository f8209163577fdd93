"""One session's lock around its model, and the training run that holds it a step at a time.

Every optimiser step and every read (a decode, an encoding, a sample) takes ``lock``, so a read
sees the weights between two steps, never half-way through one, and waits at most one step.
Locks are not fair: a training loop that re-takes the lock right after each step would starve
the readers, so it pauses a moment while anyone waits. Stop requests reach the running trainer
and any training that starts after them, until a new user action clears them: a Stop pressed
while a Start is still building its model is not lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from .records import Record
from .trainer import Trainer


class ModelLock:
    """The lock, its fairness to readers, the stop requests and the running trainer."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # held for every step and every read of the model
        self._stop = threading.Event()  # a Stop not yet spent (see begin_action)
        self._running: Trainer | None = None  # the trainer of the run in progress
        self._waiting = 0  # readers waiting for the lock
        self._waiting_lock = threading.Lock()

    @property
    def training(self) -> bool:
        return self._running is not None

    def refuse_while_training(self) -> None:
        if self.training:
            raise ValueError("training is running in this session: stop it first.")

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock for a read; a running training lets the reader in at its next step."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            with self.lock:
                yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def begin_action(self) -> None:
        """A new user action (Start, Continue) begins: earlier Stop presses are spent."""
        self._stop.clear()

    def request_stop(self) -> None:
        """Stop the running training after its current step, or a training about to start."""
        self._stop.set()
        trainer = self._running
        if trainer is not None:
            trainer.request_stop()

    def claim(self, trainer: Trainer) -> None:
        """Mark ``trainer``'s run as this session's (call under ``lock``, with the check that
        made it: nothing can start in between); ``run`` then runs it."""
        with self.lock:
            if self._running is not None:
                raise ValueError("this session is already training; stop it first.")
            self._running = trainer

    def run(
        self,
        trainer: Trainer,
        on_record: Callable[[Record], None],
        records: Callable[[], Iterator[Record]] | None = None,
    ) -> Iterator[Record]:
        """Run ``trainer`` one record at a time, each step under the lock; ``on_record`` sees every
        record under the lock too (the caller's bookkeeping is part of the step). ``records``
        makes the trainer's generator (default ``trainer.run``; stepping passes ``trainer.steps``).
        The caller may stop iterating at any time: the run ends between two steps."""
        with self.lock:
            if self._running is not trainer:  # claimed already by the caller, or claimed here
                self.claim(trainer)
        gen = (records or trainer.run)()
        # A trainer in another process (worker.ProcessTrainer) is waited for without the lock,
        # and takes it itself while it copies the weights in; only the bookkeeping is done here.
        remote = getattr(trainer, "remote", False)
        try:
            while True:
                if self._waiting and not remote:
                    time.sleep(0.001)  # let a waiting reader (a decode, a sample) in between steps
                # In the thread, the step and its bookkeeping happen under one hold of the lock.
                with contextlib.nullcontext() if remote else self.lock:
                    if self._stop.is_set():
                        trainer.request_stop()  # honoured before the next step
                    try:
                        rec = next(gen)
                    except StopIteration:
                        return
                    with self.lock:  # (re-entered in the thread)
                        on_record(rec)
                yield rec
        finally:
            gen.close()
            with self.lock:
                self._running = None
