"""Training in a process of its own, so that the server's process keeps serving while it runs.

In the app, one session's training shares nothing but the machine with the other sessions:
when the training thread ran inside the server, its hundreds of small PyTorch calls per step
took and gave back Python's GIL thousands of times a second, and every other session's click
waited in line behind them (bench/bench_load.py: the training phase doubled a click's p95).
``ProcessTrainer`` has the interface of ``trainer.Trainer`` that the Workspace and ModelLock use;
its ``run()`` starts a worker process that runs the real ``Trainer`` and

- sends every record back (the Workspace keeps its step log, history and versions as before);
- publishes its weights into shared memory at most every ``PUBLISH_EVERY`` seconds and at the
  end of every epoch, stop and rollback; the server copies them into the session's model under
  the model's lock, so decoding while training sees whole steps, as before;
- may run at a lower CPU priority (``VAE_EXPLORER_TRAIN_NICE``, 0 by default): then on a busy
  machine the server's requests go first, on a quiet one the training has every core;
- ends with the run, giving its memory back, and sends the optimiser state home for Continue.

Stop, NaN rollback and Continue are the Trainer's own, inside the worker. A checkpoint saved
while training asks the worker for a consistent snapshot (weights, Adam's state, history)
between two steps. Workers are forked from a small server process that has imported PyTorch
once (multiprocessing's "forkserver"), so a run starts in tens of milliseconds, not seconds.
What travels between the two processes, and the worker's own loop, are in worker_job.py.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator

import torch

from . import worker_job as wj
from .config import TrainConfig
from .dataset import UPLOADED, ImageDataset
from .model import LatentModel
from .records import EpochRecord, Record, StepRecord, StopRecord
from .run_state import EpochProgress, RunProgress

_start_lock = threading.Lock()


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """multiprocessing re-runs the parent's main script in every child it starts (so that
    functions defined there can be unpickled). The worker's target lives in worker_job, and
    the app's main script builds the whole app: while a worker starts, the main module shows
    no file to re-run."""
    main = sys.modules["__main__"]
    with _start_lock:
        saved_file = main.__dict__.pop("__file__", None)
        saved_spec = main.__dict__.get("__spec__")
        main.__spec__ = None
        try:
            yield
        finally:
            main.__spec__ = saved_spec
            if saved_file is not None:
                main.__file__ = saved_file


def nice_level() -> int:
    """``VAE_EXPLORER_TRAIN_NICE``: how much lower the training's CPU priority is (0 to 19).
    0 by default: a lower priority gives a busy server's clicks the CPU first, but a worker
    starved by other busy processes also takes long to reach its next step, where Stop waits."""
    raw = os.environ.get("VAE_EXPLORER_TRAIN_NICE", "0").strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 19:
        raise ValueError(f"VAE_EXPLORER_TRAIN_NICE must be a whole number from 0 to 19, got {raw[:40]!r}.")
    return int(raw)


def enabled() -> bool:
    """``VAE_EXPLORER_TRAIN_WORKER``: 1 (the app's default) trains each run in a worker process,
    0 in a thread of the server's process."""
    raw = os.environ.get("VAE_EXPLORER_TRAIN_WORKER", "1").strip()
    if raw not in ("0", "1"):
        raise ValueError(f"VAE_EXPLORER_TRAIN_WORKER must be 0 or 1, got {raw[:40]!r}.")
    return raw == "1"


def warm_up() -> None:
    """Start the fork server now (it imports PyTorch once, a few seconds), not at the first Start,
    and return once it serves. Until then a training's start waits for it, and so does a
    cancelled call of /train (Gradio waits for the generator's current step)."""
    probe = wj.CONTEXT.Process(target=wj.ready, daemon=True, name="vae-explorer-warm-up")
    with _main_not_rerun():
        probe.start()
    probe.join()


class ProcessTrainer(RunProgress):
    """``Trainer``'s interface for the Workspace, with the training itself in a worker process."""

    remote = True  # ModelLock waits for its records outside the model's lock: see run()

    def __init__(
        self,
        model: LatentModel,
        data: ImageDataset,
        config: TrainConfig,
        *,
        epoch: int = 0,
        step: int = 0,
        history: list[EpochRecord] | None = None,
        optimizer_state: dict | None = None,
        data_dir: str | None = None,
        max_train_images: int | None = None,
        lock: threading.RLock | None = None,
        rng_state: tuple[torch.Tensor, torch.Tensor] | None = None,
        progress: EpochProgress | None = None,
    ) -> None:
        # The session's model (the worker's weights are copied into it); epoch, step and history
        # follow the records as they arrive.
        super().__init__(model, data, config, epoch, step, history)
        self._lock = lock or threading.RLock()  # the session's model lock: held while weights are copied
        self.thread_tuner = None  # the worker tunes its own threads
        self._optimizer_state = optimizer_state  # Adam's, as of the last run's end
        self._data_dir = data_dir
        self._max_train = max_train_images if max_train_images is not None else len(data.x_train)
        self._ch: wj.Channels | None = None  # the running worker's channels
        self._next: object | None = None  # a message received by _wait, not yet handled
        self._seen = 0  # the publication last copied into the model
        self._snapshots: queue.Queue = queue.Queue()  # replies to snapshot(), for the saver
        self._reader = threading.Lock()  # held by whoever reads the worker's messages
        self._stash: collections.deque = collections.deque()  # read by snapshot(), for the run
        self._rng_state = rng_state  # the generators where the last run left them (None: fresh)
        self.progress = progress  # the epoch a run or stepping left part-way (None: between epochs)

    @property
    def optimizer(self) -> torch.optim.Adam:
        """Adam over the session's model with the state of the last finished run."""
        opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.config.lr)
        if self._optimizer_state is not None:
            opt.load_state_dict(self._optimizer_state)
        return opt

    def rng_state(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Where the batch-order and ε generators are (None: not drawn from yet, seeded afresh)."""
        return self._rng_state

    def request_stop(self) -> None:
        if self._ch is not None:
            self._ch.stop.set()

    def snapshot(self, timeout: float = 60.0) -> wj.Snapshot | None:
        """The running worker's state between two steps (or at its end); None when no run is
        going (then the session's model and ``optimizer`` are the whole state). Called from any
        thread, also the one that iterates ``run()``."""
        ch = self._ch
        if ch is None:
            return None
        ch.snapshot.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._ch is ch:
            if self._reader.acquire(blocking=False):  # nobody is reading: read here
                try:
                    msg = self._receive(ch, 0.1)
                    if isinstance(msg, wj.Snapshot) and not isinstance(msg, wj.Done):
                        return wj.state(msg)
                    if msg is not None:
                        self._stash.append(msg)  # the run's, in order
                    if isinstance(msg, wj.Done):
                        return wj.state(msg)
                    if isinstance(msg, wj.Failed):
                        return None
                finally:
                    self._reader.release()
            else:
                try:
                    return self._snapshots.get(timeout=0.1)
                except queue.Empty:
                    pass
        return None

    def _receive(self, ch: wj.Channels, timeout: float) -> object | None:
        try:
            return ch.out.get(timeout=timeout)
        except queue.Empty:
            if not self._proc.is_alive() and ch.out.empty():
                return wj.Failed("the training process ended unexpectedly.")
            return None

    def _sync(self) -> None:
        """Copy the latest published weights into the session's model, under its lock."""
        ch = self._ch
        if ch.seq.value == self._seen:  # nothing new (checked again under the locks): no lock taken
            return
        with self._lock, ch.lock:
            if ch.seq.value == self._seen:
                return
            self._seen = ch.seq.value
            with torch.no_grad():
                for k, v in self.model.state_dict().items():
                    v.copy_(ch.published[k])

    def _wait(self) -> None:
        """Block until the worker's next message (never under the model's lock); snapshots go
        to whoever asked for them."""
        ch = self._ch
        while self._next is None and ch is not None:
            with self._reader:
                msg = self._stash.popleft() if self._stash else self._receive(ch, 0.5)
            if isinstance(msg, wj.Snapshot) and not isinstance(msg, wj.Done):
                self._snapshots.put(wj.state(msg))
                continue
            if isinstance(msg, wj.Done) and ch.snapshot.is_set():
                self._snapshots.put(wj.state(msg))  # a save asked as the run ended: its last state
            self._next = msg

    def _finished(self, msg: wj.Done) -> None:
        self._optimizer_state = wj.as_tensors(msg.optimizer_state)
        self._rng_state = wj.as_tensors(msg.rng_state)
        self.progress = wj.as_tensors(msg.progress)

    def _take(self):
        self._wait()
        msg, self._next = self._next, None
        return msg

    def _settle(self, msg: object) -> bool:
        """Take one message of the worker into account; True when it ends the run."""
        if isinstance(msg, wj.Failed):
            return True
        self._sync()
        if isinstance(msg, wj.Done):
            self._finished(msg)
            return True
        self._note(msg)
        return False

    def _note(self, rec: Record) -> None:
        if isinstance(rec, StepRecord):
            self.step = rec.step
        elif isinstance(rec, EpochRecord):
            self.epoch, self.step = rec.epoch, rec.step
            self.history.append(rec)
        elif isinstance(rec, StopRecord):
            self.step = rec.step

    def run(self, epochs: int | None = None) -> Iterator[Record]:
        """Train in a worker for ``epochs`` (default: the config's) more epochs, yielding its
        records; the session's model follows the worker's weights. Unlike ``Trainer.run``, it
        waits for the worker without the model's lock and takes the lock itself to copy the
        weights, so call it without holding the lock (ModelLock.run does)."""
        ch = wj.Channels(self.model)
        task = wj.Job(
            self.model.config,
            self.data.name,
            self._data_dir,
            self._max_train,
            self.config,
            self.epoch,
            self.step,
            list(self.history),
            self._optimizer_state,
            epochs,
            wj.plain(self._rng_state),
            nice_level(),
            wj.plain(self.progress),
            self.data if self.data.name.startswith(UPLOADED) else None,  # only this session has it
        )
        self._ch, self._next, self._seen = ch, None, 0
        self._proc = wj.CONTEXT.Process(
            target=wj.work, args=(task, ch), daemon=True, name="vae-explorer-train"
        )
        with _main_not_rerun():
            self._proc.start()
        done = False
        try:
            while True:
                msg = self._take()
                done = self._settle(msg)
                if isinstance(msg, wj.Failed):
                    raise ValueError(f"training failed: {msg.message}")
                if done:
                    return
                yield msg
        finally:
            deadline = time.monotonic() + 60
            if not done:  # the caller stopped listening: stop the worker after its step, keep its state
                ch.stop.set()
            while not done and time.monotonic() < deadline:
                done = self._settle(self._take())
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._ch = None
