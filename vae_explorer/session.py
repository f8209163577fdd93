"""Workspace: everything one user (one browser session) owns — model, optimiser, history,
caches — behind one lock (model_lock.py). Nothing here is shared between users except read-only
data sets and shipped weights, so two students training at once never see each other's model.

Reads (decode, encode, sample, the map) take the lock through ``ModelLock.reading``: they see
the weights between two training steps, never half-way through one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .build import build_model
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, shipped_checkpoints
from .config import ModelConfig, RunInfo, TrainConfig
from .data import ImageDataset
from .device import select_device
from .evaluate import encode_all
from .generate import decode_z
from .latent import ProjectionCache
from .limits import Limits
from .model import LatentModel
from .model_lock import ModelLock
from .own_data import OwnData
from .reads import Reads
from .records import EpochRecord, Record, StepRecord, StopRecord
from .run_state import check_part
from .sweep import BetaSweep, SweepRecord
from .trainer import Trainer
from .worker import ProcessTrainer

DEFAULT_CHECKPOINT = "mnist-2d"  # real 28×28 digits, a 2-D latent: the classic manifold
CHECK_IMAGES = 64  # test images a loaded model must encode to usable numbers
MAX_CODE = 1e6  # |μ| beyond this is no place on any map (the map's coordinates stop there)
MAX_STEPS = 10_000  # steps one Step or Slow call may ask for
MAX_STEP_LOG = 4000  # step records kept for plots; beyond this every other one is dropped


def _check_outputs(model: LatentModel, data: ImageDataset) -> None:
    """A checkpoint's weights can all be finite and still overflow (1e30 everywhere): every map,
    KL and projection of such a model is inf or NaN. Refuse it on load, saying why."""
    n = min(CHECK_IMAGES, len(data.x_test))
    y = data.y_test[:n] if model.config.conditional else None
    q = encode_all(model, data.x_test[:n], y)
    label = torch.zeros(1, dtype=torch.long) if model.config.conditional else None
    image = decode_z(model, torch.zeros(1, model.latent_dim), label)
    usable = torch.isfinite(q.logvar).all() and torch.isfinite(image).all()
    if not (usable and torch.isfinite(q.mean).all() and q.mean.abs().max() <= MAX_CODE):
        raise ValueError(
            f"this model's encoder or decoder gives infinite, NaN or absurdly large values on {data.name} "
            "(its weights are far too large), so nothing it shows would mean anything."
        )


@dataclass(frozen=True)
class PreviousRun:
    """The run a new model replaced, kept so that "what did this change?" is one plot."""

    dataset: str  # its data set: a run on other data is not comparable
    steps: list[StepRecord]  # its step log (thinned like the current one)
    history: list[EpochRecord]  # its finished epochs


class Workspace(Reads, OwnData):
    """One user's model and everything derived from it; what it can show is in ``Reads``."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        data_dir: str | None = None,
        limits: Limits | None = None,
        device: torch.device | None = None,
        train_worker: bool = False,
    ) -> None:
        self.limits = limits or Limits.from_env()
        self.data_dir = data_dir
        self.device = device or select_device()
        # Train in a worker process (worker.py; the app does, on the CPU) or in the caller's thread.
        self.train_worker = train_worker and self.device.type == "cpu"
        self.guard = ModelLock()
        self.lock = self.guard.lock  # held by every training step and every read
        self.projections = ProjectionCache(size=4)
        self.previous_run: PreviousRun | None = None  # the run the last Start or Reset replaced
        self.last_sweep: BetaSweep | None = None  # the β sweep last run here (sweep.py), its models kept
        self.truths = ProjectionCache(size=4)  # Reads.true_posterior's grids
        self.upload = None  # this session's own data set (OwnData.use_upload)
        self._posteriors = None  # Reads.test_posteriors' cache
        self.version = -1  # bumps on every change of the weights and never goes back: it keys the caches
        self._install_checkpoint(checkpoint)

    @classmethod
    def from_shipped(cls, name: str = DEFAULT_CHECKPOINT, **kw) -> Workspace:
        paths = shipped_checkpoints()
        if name not in paths:
            raise ValueError(f"there is no shipped checkpoint called {name!r}.")
        return cls(load_checkpoint(paths[name]), **kw)

    # -- a new model ------------------------------------------------------------------------
    def _install(self, model: LatentModel, data: ImageDataset, run: RunInfo, optimizer_state) -> None:
        """The one way a model becomes this workspace's: everything derived from the old one goes."""
        with self.lock:
            self.guard.refuse_while_training()
            self.model = model.to(self.device)
            self.data = data
            self.data_source = (  # the upload this data came from (limit_data keeps x_test), if any
                self.upload if self.upload is not None and data.x_test is self.upload.data.x_test else None
            )
            self.run = run
            self.trainer: Trainer | ProcessTrainer | None = None
            self._optimizer_state = optimizer_state  # Adam's moments of a loaded file, until trained
            self.version += 1
            self.last_stop: StopRecord | None = None
            self.step_log: list[StepRecord] = []  # applied steps, thinned to MAX_STEP_LOG

    def _install_checkpoint(self, ck: Checkpoint) -> None:
        cfg = ck.model.config
        self.limits.check_model(cfg)
        data = self._data_for(ck.run.dataset)  # a registered set or this session's upload; slow once
        if data.image_shape != cfg.input_shape:
            raise ValueError(
                f"this model expects images of shape {cfg.input_shape}, "
                f"but {data.name} has {data.image_shape}."
            )
        if cfg.conditional and cfg.num_classes != data.num_classes:
            raise ValueError(
                f"this conditional model has {cfg.num_classes} classes; {data.name} has {data.num_classes}."
            )
        _check_outputs(ck.model, data)
        self._install(ck.model, data, ck.run, ck.optimizer_state)

    def load(self, path: str | os.PathLike) -> dict:
        """Replace the model by a checkpoint file (validated; the old model stays on error).
        Returns the app settings saved with it (empty for a file saved without them)."""
        ck = load_checkpoint(path, self.device)
        self._install_checkpoint(ck)
        return dict(ck.session)

    def new_model(self, dataset: str, train_config: TrainConfig, **settings) -> None:
        """A fresh model for ``dataset``: the data set fixes the image shape and the classes,
        ``settings`` are the other ModelConfig fields (arch, latent_dim, ...)."""
        if dataset not in self.datasets():
            raise ValueError(f"choose a data set from {', '.join(self.datasets())}.")
        data = self._data_for(dataset)
        config = ModelConfig(input_shape=data.image_shape, num_classes=data.num_classes, **settings)
        self.reset(config, train_config, dataset)

    def reset(self, model_config: ModelConfig, train_config: TrainConfig, dataset: str) -> None:
        """A fresh, untrained model with the given configuration. The run it replaces, if it
        trained, is kept as ``previous_run`` (drawn faintly beside the new one)."""
        self.limits.check(model_config, train_config)
        data = self._data_for(dataset)  # slow the first time: outside the lock
        if model_config.input_shape != data.image_shape:
            raise ValueError(f"{data.name} has images of shape {data.image_shape}.")
        model = build_model(model_config, train_config.seed, self.device)
        with self.lock:
            self.guard.refuse_while_training()  # before the ghost changes: a refused Reset changes nothing
            if self.step_log or self.run.history:
                self.previous_run = PreviousRun(self.run.dataset, list(self.step_log), list(self.run.history))
        self._install(model, data, RunInfo(data.name, list(data.class_names), train_config), None)

    def save(self, path: str | os.PathLike, session: dict | None = None) -> Path:
        """Save the model; ``session`` (the app's settings) travels with it (checkpoint.check_session)."""
        trainer = self.trainer
        snap = trainer.snapshot() if isinstance(trainer, ProcessTrainer) and self.is_training else None
        if snap is not None:  # training in a worker: its weights and Adam's state between two steps
            model = build_model(self.model.config)
            model.load_state_dict(snap.weights)
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
            optimizer.load_state_dict(snap.optimizer_state)
            last = snap.run.history[-1].to_dict() if snap.run.history else {}
            return save_checkpoint(path, model, snap.run, optimizer, metrics=last, session=session)
        with self.guard.reading():
            optimizer = self.trainer.optimizer if self.trainer else None
            if optimizer is None and self._optimizer_state is not None:
                # Loaded with Adam's moments and not trained since: keep them in the file.
                optimizer = torch.optim.Adam(self.model.parameters())
                optimizer.load_state_dict(self._optimizer_state)
            last = self.run.history[-1].to_dict() if self.run.history else {}
            info = self.run_info()
            return save_checkpoint(path, self.model, info, optimizer, metrics=last, session=session)

    def run_info(self) -> RunInfo:
        return self.trainer.run_info() if self.trainer else self.run

    # -- training ---------------------------------------------------------------------------
    def train(self, train_config: TrainConfig) -> Iterator[Record]:
        """Continue training the current model with ``train_config`` (its optimizer state is
        kept). Each step runs under the lock; the caller may stop iterating at any time."""
        yield from self._go(train_config, steps=None)

    def step(self, train_config: TrainConfig, n: int | None = 1, part: str | None = None) -> Iterator[Record]:
        """``n`` optimiser steps of the run (the Step and Slow buttons; None: to the epoch's end),
        each training ``part`` ("both", "encoder", "decoder"; None: as the run would). They run in
        this process (a worker per step would cost more than the step); Continue goes on from
        the same batch."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS):
            raise ValueError(f"take between 1 and {MAX_STEPS} steps at a time, got {n!r}.")
        check_part(part) if part is not None else None
        yield from self._go(train_config, steps=(n, part))

    def _go(self, train_config: TrainConfig, steps: tuple[int, str | None] | None) -> Iterator[Record]:
        """A whole run (``steps`` None) or that many steps of one part, under the lock."""
        self.limits.check(self.model.config, train_config)
        with self.lock:
            if self.is_training:
                raise ValueError("this session is already training; stop it first.")
            self.trainer = trainer = self._trainer_for(train_config, in_thread=steps is not None)
            self.guard.claim(trainer)  # in this hold of the lock: a second Start or Step is refused
            self.last_stop = None
        try:
            records = None if steps is None else lambda: trainer.steps(*steps)
            yield from self.guard.run(trainer, lambda rec: self._record(trainer, rec), records)
        finally:
            with self.lock:
                self.run = trainer.run_info()

    def _trainer_for(self, train_config: TrainConfig, in_thread: bool) -> Trainer | ProcessTrainer:
        """The trainer to go on with: the current one when it fits, else a new one that takes over
        the run: epoch, step, history, Adam's state, where the generators are (same seed) and the
        epoch in progress (same batch size), so stepping, then Continue, is one run."""
        prev, worker = self.trainer, self.train_worker and not in_thread
        same = prev is not None and prev.config == train_config
        if same and isinstance(prev, ProcessTrainer) == worker:
            return prev
        info = prev.run_info() if prev else self.run
        kw = dict(
            epoch=info.epoch,
            step=info.step,
            history=info.history,
            optimizer_state=prev.optimizer.state_dict() if prev else self._optimizer_state,
        )
        if prev is not None and prev.config.seed == train_config.seed:
            kw["rng_state"] = prev.rng_state()  # the same run's draws go on (another seed: fresh ones)
        if prev is not None and prev.config.batch_size == train_config.batch_size:
            kw["progress"] = prev.progress  # the epoch in progress is cut in batches of this size
        if worker:
            kw.update(data_dir=self.data_dir, max_train_images=self.limits.max_train_images, lock=self.lock)
            return ProcessTrainer(self.model, self.data, train_config, **kw)
        return Trainer(self.model, self.data, train_config, **kw)

    def _record(self, trainer: Trainer, rec: Record) -> None:
        """A training record's bookkeeping, under the lock with its step."""
        if isinstance(rec, StepRecord) and not rec.skipped:
            self.step_log.append(rec)
            if len(self.step_log) > MAX_STEP_LOG:
                # Halve the resolution of the older part: bounded memory, the whole run still shown.
                self.step_log = self.step_log[::2]
        if not isinstance(rec, StepRecord) or not rec.skipped:
            self.version += 1
        if isinstance(rec, StopRecord):
            self.last_stop = rec
            if rec.rolled_back:  # the rolled-back steps are no longer part of the run
                self.step_log = [r for r in self.step_log if r.step <= rec.step]
        if not isinstance(rec, StepRecord):
            self.run = trainer.run_info()

    def carried_batches(self, train_config: TrainConfig) -> int:
        """Batches of an epoch in progress that a run with ``train_config`` goes on from (a stop
        or steps part-way through it, the same batch size: _trainer_for); 0 between epochs."""
        prev = self.trainer
        if prev is None or prev.progress is None or prev.config.batch_size != train_config.batch_size:
            return 0
        return prev.progress.batches

    @property
    def is_training(self) -> bool:
        return self.guard.training

    def begin_action(self) -> None:
        """A new user action (Start, Continue) begins: earlier Stop presses are spent."""
        self.guard.begin_action()

    def request_stop(self) -> None:
        """Stop the running training after its current step, or a training about to start."""
        self.guard.request_stop()

    # -- a β sweep (sweep.py) ----------------------------------------------------------------------
    def sweep(self, betas, epochs: int) -> Iterator[SweepRecord]:
        """Train the current model's configuration from fresh weights once per β, all at once
        (its run's seed, learning rate, batch size and clip, constant β, ``epochs`` epochs), and
        yield the models' points on the rate–distortion plane. The session's own model is not
        touched; the sweep's models stay here for ``load_from_sweep``."""
        # β alone varies: no schedule, no free bits; grey pixels as they are (no binarisation)
        tc = dataclasses.replace(
            self.run.train, epochs=epochs, kl_schedule="constant", free_bits=0.0, binarize=False
        )
        self.limits.check(self.model.config, tc)
        sweep = BetaSweep(self.model.config, tc, self.data, betas, self.device)
        self.last_sweep = sweep
        yield from sweep.run()

    def load_from_sweep(self, k: int) -> float:
        """Model k of the last sweep becomes this session's model (untrained further); its β."""
        sweep = self.last_sweep
        if sweep is None:
            raise ValueError("run a β sweep first: there is no sweep model to load.")
        model = sweep.model(k)
        beta = sweep.betas[k]
        data, tc = sweep.data, dataclasses.replace(sweep.train, beta=beta)
        run = RunInfo(data.name, list(data.class_names), tc, step=sweep.step, epoch=sweep.epochs_done)
        self._install(model, data, run, None)
        return beta
