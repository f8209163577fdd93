"""Workspace: everything one user (one browser session) owns — model, optimiser, history,
caches — behind one lock. Nothing here is shared between users except read-only data sets and
shipped weights, so two students training at once never see each other's model.

Decoding while training: every training step and every decode takes ``lock``, so a decode sees
the weights between two steps, never half-way through one, and waits at most one step.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, shipped_checkpoints
from .config import ModelConfig, RunInfo, TrainConfig
from .data import ImageDataset, dataset_names, load_dataset
from .diagnostics import label_information
from .evaluate import encode_all
from .generate import decode_z, reconstruct, sample_prior
from .images import load_image, prepare_drawing
from .latent import Projection, ProjectionCache, project
from .limits import Limits, limit_data
from .loss import kl_per_dim
from .model import VAE, build_model, select_device
from .reparam import ReparamDraw, draw
from .trainer import EpochRecord, StepRecord, StopRecord, Trainer

DEFAULT_CHECKPOINT = "digits-2d"
CHECK_IMAGES = 64  # test images a loaded model must encode to usable numbers
MAX_CODE = 1e6  # |μ| beyond this is no place on any map (the map's coordinates stop there)
MAX_STEP_LOG = 4000  # step records kept for plots; beyond this every other one is dropped


def _check_outputs(model: VAE, data: ImageDataset) -> None:
    """A checkpoint's weights can all be finite and still overflow (1e30 everywhere): every map,
    KL and projection of such a model is inf or NaN. Refuse it on load, saying why."""
    n = min(CHECK_IMAGES, len(data.x_test))
    y = data.y_test[:n] if model.config.conditional else None
    with torch.no_grad():
        mu, logvar = encode_all(model, data.x_test[:n], y)
        label = torch.zeros(1, dtype=torch.long) if model.config.conditional else None
        image = decode_z(model, torch.zeros(1, model.latent_dim), label)
    usable = torch.isfinite(logvar).all() and torch.isfinite(image).all()
    if not (usable and torch.isfinite(mu).all() and mu.abs().max() <= MAX_CODE):
        raise ValueError(
            f"this model's encoder or decoder gives infinite, NaN or absurdly large values on {data.name} "
            "(its weights are far too large), so nothing it shows would mean anything."
        )


@dataclass
class Encoded:
    """A user's input, prepared like the data set, and what the model makes of it."""

    x: torch.Tensor  # (1, C, H, W) the prepared input in [0, 1]
    mu: np.ndarray  # (D,) posterior mean
    logvar: np.ndarray  # (D,) posterior log-variance
    recon: torch.Tensor  # (1, C, H, W) the reconstruction (decoded from mu)


class Workspace:
    """One user's model and everything derived from it."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        data_dir: str | None = None,
        limits: Limits | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.limits = limits or Limits.from_env()
        self.data_dir = data_dir
        self.device = device or select_device()
        self.projections = ProjectionCache(size=4)
        self._training = False
        self._posteriors: tuple = (None,)  # ((version, n), mu, logvar, y) of test_posteriors
        # Stop requests reach the running trainer and any training that starts after them,
        # until a new user action clears them (see begin_action): a Stop pressed while a Start
        # is still building its model is not lost.
        self._stop = threading.Event()
        self._running: Trainer | None = None
        # Readers waiting for the lock. Locks are not fair: a training loop that re-takes the lock
        # right after each step would starve them, so it pauses a moment while anyone waits.
        self._waiting = 0
        # The last places decoded on the latent map (or encoded images): (z (D,), label or None).
        self.clicks: list[tuple[np.ndarray, int | None]] = []
        self._waiting_lock = threading.Lock()
        self._set_checkpoint(checkpoint)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_shipped(cls, name: str = DEFAULT_CHECKPOINT, **kw) -> Workspace:
        paths = shipped_checkpoints()
        if name not in paths:
            raise ValueError(f"there is no shipped checkpoint called {name!r}.")
        return cls(load_checkpoint(paths[name]), **kw)

    def _set_checkpoint(self, ck: Checkpoint) -> None:
        cfg = ck.model.config
        self.limits.check_model(cfg)
        if ck.run.dataset not in dataset_names():
            # A checkpoint names its data set; only registered names are followed, never a
            # path on this server (an "npz:/etc/..." would probe or read the server's files).
            raise ValueError(
                f"this model was trained on {ck.run.dataset!r}; here only {', '.join(dataset_names())} "
                "models can be loaded."
            )
        data = self._data_for(ck.run.dataset)  # slow the first time: outside the lock
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
        with self.lock:
            self._refuse_while_training()
            self.model: VAE = ck.model.to(self.device)
            self.data = data
            self.run = ck.run
            self.trainer: Trainer | None = None
            self._optimizer_state = ck.optimizer_state
            # Bumps on every change of the weights and never goes back: it keys the caches, so
            # a loaded model must not reuse a number an earlier model had.
            self.version = getattr(self, "version", -1) + 1
            self.last_stop: StopRecord | None = None
            self.step_log: list[StepRecord] = []  # applied steps, thinned to MAX_STEP_LOG
            self.clicks = []  # places on the old model's map mean nothing to this one
            self.saved_session = dict(ck.session)  # settings saved with the model, for the UI

    def _refuse_while_training(self) -> None:
        if self._training:
            raise ValueError("training is running in this session: stop it first.")

    def _data_for(self, name: str) -> ImageDataset:
        return limit_data(load_dataset(name, self.data_dir, download=True), self.limits.max_train_images)

    def load(self, path: str | os.PathLike) -> None:
        """Replace the model by a checkpoint file (validated; the old model stays on error)."""
        ck = load_checkpoint(path, self.device)
        self._set_checkpoint(ck)

    def save(self, path: str | os.PathLike, session: dict | None = None) -> Path:
        """Save the model; ``session`` (the app's settings) travels with it (checkpoint.check_session)."""
        with self._reading():
            optimizer = self.trainer.optimizer if self.trainer else None
            if optimizer is None and self._optimizer_state is not None:
                # Loaded with Adam's moments and not trained since: keep them in the file.
                optimizer = torch.optim.Adam(self.model.parameters())
                optimizer.load_state_dict(self._optimizer_state)
            return save_checkpoint(
                path,
                self.model,
                self.run_info(),
                optimizer,
                metrics=self.run.history[-1] if self.run.history else {},
                session=session,
            )

    def run_info(self) -> RunInfo:
        return self.trainer.run_info() if self.trainer else self.run

    def new_model(self, dataset: str, train_config: TrainConfig, **settings) -> None:
        """A fresh model for ``dataset``: the data set fixes the image shape and the classes,
        ``settings`` are the other ModelConfig fields (arch, latent_dim, ...)."""
        if dataset not in dataset_names():
            raise ValueError(f"choose a data set from {', '.join(dataset_names())}.")
        data = self._data_for(dataset)
        config = ModelConfig(input_shape=data.image_shape, num_classes=data.num_classes, **settings)
        self.reset(config, train_config, dataset)

    def reset(self, model_config: ModelConfig, train_config: TrainConfig, dataset: str) -> None:
        """A fresh, untrained model with the given configuration."""
        self.limits.check(model_config, train_config)
        data = self._data_for(dataset)  # slow the first time: outside the lock
        if model_config.input_shape != data.image_shape:
            raise ValueError(f"{data.name} has images of shape {data.image_shape}.")
        model = build_model(model_config, train_config.seed, self.device)
        with self.lock:
            self._refuse_while_training()
            self.model, self.data = model, data
            self.run = RunInfo(data.name, list(data.class_names), train_config)
            self.trainer = None
            self._optimizer_state = None
            self.version += 1
            self.last_stop = None
            self.step_log = []
            self.clicks = []

    # -- training -------------------------------------------------------------------------
    def train(self, train_config: TrainConfig) -> Iterator[StepRecord | EpochRecord | StopRecord]:
        """Continue training the current model with ``train_config`` (its optimizer state is
        kept). Each step runs under the lock; the caller may stop iterating at any time."""
        self.limits.check(self.model.config, train_config)
        with self.lock:
            if self._training:
                raise ValueError("this session is already training; stop it first.")
            if self.trainer is None or self.trainer.config != train_config:
                prev = self.trainer
                state = prev.optimizer.state_dict() if prev else self._optimizer_state
                info = prev.run_info() if prev else self.run
                self.trainer = Trainer(
                    self.model,
                    self.data,
                    train_config,
                    epoch=info.epoch,
                    step=info.step,
                    history=info.history,
                    optimizer_state=state,
                )
            trainer = self.trainer
            self.last_stop = None
            self._training = True
            self._running = trainer
        gen = trainer.run()
        try:
            while True:
                if self._waiting:
                    time.sleep(0.001)  # let a waiting reader (a decode, a sample) in between steps
                with self.lock:
                    if self._stop.is_set():
                        trainer.request_stop()  # honoured before the next step
                    try:
                        rec = next(gen)
                    except StopIteration:
                        return
                    if isinstance(rec, StepRecord) and not rec.skipped:
                        self._log_step(rec)
                    if not isinstance(rec, StepRecord) or not rec.skipped:
                        self.version += 1
                    if isinstance(rec, StopRecord):
                        self.last_stop = rec
                        if rec.rolled_back:  # the rolled-back steps are no longer part of the run
                            self.step_log = [r for r in self.step_log if r.step <= rec.step]
                    if not isinstance(rec, StepRecord):
                        self.run = trainer.run_info()
                yield rec
        finally:
            gen.close()
            with self.lock:
                self.run = trainer.run_info()
                self._training = False
                self._running = None

    def _log_step(self, rec: StepRecord) -> None:
        self.step_log.append(rec)
        if len(self.step_log) > MAX_STEP_LOG:
            # Halve the resolution of the older part: bounded memory, the whole run still shown.
            self.step_log = self.step_log[::2]

    @property
    def is_training(self) -> bool:
        return self._training

    def begin_action(self) -> None:
        """A new user action (Start, Continue) begins: earlier Stop presses are spent."""
        self._stop.clear()

    def request_stop(self) -> None:
        """Stop the running training after its current step, or a training about to start."""
        self._stop.set()
        trainer = self._running
        if trainer is not None:
            trainer.request_stop()

    @contextlib.contextmanager
    def _reading(self):
        with self._waiting_lock:
            self._waiting += 1
        try:
            with self.lock:
                yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    # -- reading the model (each under the lock) -----------------------------------------
    def sample(self, n: int, temperature: float, seed: int, label: int | None = None) -> torch.Tensor:
        with self._reading():
            return sample_prior(self.model, n, temperature, seed, label)

    def decode(self, z: np.ndarray, label: int | torch.Tensor | None = None) -> torch.Tensor:
        """Decode z (N, D). A conditional model takes ``label``: a class (default 0), one class
        per row (N,), or soft labels (N, K)."""
        arr = np.asarray(z, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.model.latent_dim:
            raise ValueError(f"z must have {self.model.latent_dim} numbers per point, got shape {arr.shape}.")
        z_t = torch.from_numpy(arr)
        with self._reading():
            y = None
            if self.model.config.conditional:
                if isinstance(label, torch.Tensor):
                    y = label
                else:
                    y = torch.full((len(z_t),), 0 if label is None else int(label), dtype=torch.long)
            return decode_z(self.model, z_t, y)

    def test_image(self, index: int) -> tuple[torch.Tensor, int, np.ndarray]:
        """Test image ``index``: the image (1, C, H, W), its label and its posterior mean (D,)."""
        if not 0 <= index < len(self.data.x_test):
            raise ValueError(f"the test set has images 0 to {len(self.data.x_test) - 1}.")
        x, y = self.data.x_test[index : index + 1], self.data.y_test[index : index + 1]
        with self._reading():
            mu, _ = encode_all(self.model, x, y if self.model.config.conditional else None)
        return x, int(y[0]), mu[0].numpy()

    def encode_image(self, source) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        """A user's image file → (the prepared image (1, C, H, W), its mu (D,), its reconstruction).
        A conditional model needs a label to encode: class 0 is used."""
        x = load_image(source, self.model.config.input_shape)
        y = torch.zeros(1, dtype=torch.long) if self.model.config.conditional else None
        with self._reading():
            mu, _ = encode_all(self.model, x, y)
            recon = reconstruct(self.model, x, y)
        return x, mu[0].numpy(), recon

    def encode_drawing(self, array: np.ndarray) -> Encoded:
        """A drawing (H, W[, C]) → prepared like the data set (images.prepare_drawing), its
        posterior and its reconstruction. A conditional model encodes it with class 0."""
        x = prepare_drawing(array, self.model.config.input_shape)
        y = torch.zeros(1, dtype=torch.long) if self.model.config.conditional else None
        with self._reading():
            mu, logvar = encode_all(self.model, x, y)
            recon = reconstruct(self.model, x, y)
        return Encoded(x, mu[0].numpy(), logvar[0].numpy(), recon)

    def reparameterize(self, index: int, seed: int, trail: int = 0) -> ReparamDraw:
        """Test image ``index`` through the encoder, and one draw z = μ + σ ⊙ ε with ε from
        ``seed`` (reparam.draw), decoded; plus the z of the ``trail`` draws before it."""
        if not 0 <= index < len(self.data.x_test):
            raise ValueError(f"the test set has images 0 to {len(self.data.x_test) - 1}.")
        x, y = self.data.x_test[index : index + 1], self.data.y_test[index : index + 1]
        with self._reading():
            return draw(self.model, x, y, seed, trail)

    def nearest_test_image(self, z: np.ndarray, n: int = 2000) -> int:
        """The index of the test image (of the first n) whose posterior mean is nearest to z (D,)."""
        mu, _, _ = self.test_posteriors(n)
        zz = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1)
        if zz.shape[1] != mu.shape[1] or not torch.isfinite(zz).all():
            raise ValueError(f"z must be {mu.shape[1]} finite numbers.")
        return int(((mu - zz) ** 2).sum(dim=1).argmin())

    def test_posteriors(self, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mu, logvar (n, D) and labels (n,) of the first n test images, computed once per model
        version: every click on the map and every traversal reads them."""
        n = max(1, min(int(n), len(self.data.x_test)))
        with self._reading():
            key = (self.version, n)
            if self._posteriors[0] != key:
                x, y = self.data.x_test[:n], self.data.y_test[:n]
                mu, logvar = encode_all(self.model, x, y if self.model.config.conditional else None)
                self._posteriors = (key, mu, logvar, y)
            return self._posteriors[1:]

    def kl_per_dim(self, n: int = 2000) -> np.ndarray:
        """Mean KL of each latent dimension over (up to n) test images, nats. (D,)"""
        mu, logvar, _ = self.test_posteriors(n)
        return kl_per_dim(mu, logvar).mean(dim=0).numpy()

    def label_information(self, n: int = 2000):
        """I(mu_d; label) per dimension and the MIG on (up to n) test images."""
        if not self.data.has_labels:
            raise ValueError(f"{self.data.name} has no labels to measure against.")
        mu, _, y = self.test_posteriors(n)
        return label_information(mu, y)

    def class_indices(self, label: int, limit: int = 200) -> list[int]:
        """Indices of test images of one class (the first ``limit``)."""
        idx = torch.nonzero(self.data.y_test == label).flatten()[:limit]
        return idx.tolist()

    def reconstructions(self, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n test images and their reconstructions (decoded from mu)."""
        x, y = self.data.x_test[:n], self.data.y_test[:n]
        with self._reading():
            return x, reconstruct(self.model, x, y)

    def projection(self, method: str, n_points: int = 2000, seed: int = 0) -> tuple[Projection, torch.Tensor]:
        """2-D projection of the test set's mu (cached per model version) and the labels."""
        with self._reading():  # the key's version must be the one mu was computed for
            mu, _, y = self.test_posteriors(n_points)
            key = (self._posteriors[0][0], method, len(mu), seed)
        return self.projections.get(key, lambda: project(mu, method, seed)), y
