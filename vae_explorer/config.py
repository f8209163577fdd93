"""Typed, validated configurations for the model and for training.

Every field has a comment; every config validates itself in ``__post_init__`` and raises
``ValueError`` with a sentence a student can act on. Configs round-trip through plain JSON
dicts so that a checkpoint can describe the model it holds.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .records import EpochRecord, history_from_dicts

ARCHS = ("mlp", "conv", "hierarchical")
LIKELIHOODS = ("bernoulli", "gaussian")
GAUSSIAN_VARIANCES = ("fixed", "learned")
KL_SCHEDULES = ("constant", "linear", "cyclical")

# Upper bounds that keep a config (or a checkpoint's metadata) from asking for absurd memory.
MAX_LATENT_DIM = 512
MAX_HIDDEN_DIM = 8192
MAX_PIXELS = 128 * 128
MAX_CHANNELS = 4
MAX_CLASSES = 1000


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    # bool is an int subclass; "True" as a latent size is a bug, not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number, got {reprlib.repr(value)}.")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}.")
    return value


def _check_float(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {reprlib.repr(value)}.")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number; this whole number is too large.") from None
    # Check finiteness first: NaN compares False with everything, so a range check alone lets it by.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    too_low = value <= lo if lo_open else value < lo
    if too_low or value > hi:
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be in {bracket}{lo}, {hi}], got {value:g}.")
    return value


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {reprlib.repr(value)}.")
    return value


def _from_dict(cls, data: Any):
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} has unknown fields: {', '.join(unknown)}.")
    return cls(**data)


@dataclass
class ModelConfig:
    """What a VAE is: enough to rebuild it from a checkpoint."""

    # (channels, height, width) of one image; the data set decides it.
    input_shape: tuple[int, int, int] = (1, 8, 8)
    # "mlp": the canonical 784-400-20 shape; "conv": two stride-2 convolutions each way;
    # "hierarchical": two stochastic levels z₂ → z₁ → x with MLPs (see hierarchical.py).
    arch: str = "mlp"
    # Size of z (for "hierarchical", of the top level z₂). 2 makes the latent space plottable.
    latent_dim: int = 2
    # "hierarchical" only: size of the lower level z₁, between z₂ and x.
    bottom_latent_dim: int = 16
    # Width of the hidden layer of encoder and decoder.
    hidden_dim: int = 400
    # p(x|z): "bernoulli" (decoder outputs logits) or "gaussian" (decoder outputs means).
    likelihood: str = "bernoulli"
    # Gaussian likelihood only: "fixed" variance, or one "learned" log-variance per pixel.
    gaussian_variance: str = "fixed"
    # Gaussian likelihood only: the fixed standard deviation (or the initial one when learned).
    gaussian_std: float = 0.1
    # Conditional VAE (Sohn et al. 2015): a one-hot label joins the encoder input and z.
    conditional: bool = False
    # A plain autoencoder for comparison: the same networks, but z = mu (no noise) and no KL
    # term, so nothing shapes the codes to N(0, I) — and prior samples decode to garbage.
    autoencoder: bool = False
    # Number of classes for the one-hot label (conditional models).
    num_classes: int = 10
    # log σ² of q(z|x) is clamped to [logvar_min, logvar_max]: exp() cannot overflow (the NaN fix).
    logvar_min: float = -10.0
    # Upper clamp of log σ²: e^10 ≈ 2.2e4, far wider than any useful posterior.
    logvar_max: float = 10.0
    # Turning the clamp off is only for demonstrating NaN losses.
    clamp_logvar: bool = True

    def __post_init__(self) -> None:
        shape = self.input_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width), got {shape!r}.")
        c = _check_int("input channels", shape[0], 1, MAX_CHANNELS)
        h = _check_int("image height", shape[1], 1, MAX_PIXELS)
        w = _check_int("image width", shape[2], 1, MAX_PIXELS)
        if h * w > MAX_PIXELS:
            raise ValueError(f"images of {h}×{w} pixels are larger than the {MAX_PIXELS}-pixel limit.")
        self.input_shape = (c, h, w)
        self.arch = _check_choice("arch", self.arch, ARCHS)
        if self.arch == "conv" and (h % 4 or w % 4):
            raise ValueError(f"the conv architecture needs height and width divisible by 4, got {h}×{w}.")
        self.latent_dim = _check_int("latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        self.bottom_latent_dim = _check_int("bottom_latent_dim", self.bottom_latent_dim, 1, MAX_LATENT_DIM)
        self.hidden_dim = _check_int("hidden_dim", self.hidden_dim, 1, MAX_HIDDEN_DIM)
        self.likelihood = _check_choice("likelihood", self.likelihood, LIKELIHOODS)
        self.gaussian_variance = _check_choice(
            "gaussian_variance", self.gaussian_variance, GAUSSIAN_VARIANCES
        )
        self.gaussian_std = _check_float("gaussian_std", self.gaussian_std, 0.0, 10.0, lo_open=True)
        if not isinstance(self.conditional, bool):
            raise ValueError(f"conditional must be true or false, got {self.conditional!r}.")
        self.num_classes = _check_int("num_classes", self.num_classes, 1, MAX_CLASSES)
        if not isinstance(self.autoencoder, bool):
            raise ValueError(f"autoencoder must be true or false, got {self.autoencoder!r}.")
        if self.autoencoder and self.arch == "hierarchical":
            raise ValueError("the autoencoder option takes the mlp or conv architecture, not hierarchical.")
        self.logvar_min = _check_float("logvar_min", self.logvar_min, -30.0, 0.0)
        self.logvar_max = _check_float("logvar_max", self.logvar_max, 0.0, 30.0)
        if not isinstance(self.clamp_logvar, bool):
            raise ValueError(f"clamp_logvar must be true or false, got {self.clamp_logvar!r}.")

    @property
    def input_dim(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        return _from_dict(cls, data)


@dataclass
class TrainConfig:
    """How to train: optimiser, objective weights and schedules, guards."""

    # Passes over the training set per run.
    epochs: int = 10
    # Images per optimiser step.
    batch_size: int = 128
    # Adam learning rate.
    lr: float = 1e-3
    # Weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the true ELBO.
    beta: float = 1.0
    # How β is reached: "constant", "linear" warm-up, or "cyclical" (Fu et al. 2019).
    kl_schedule: str = "constant"
    # Linear schedule: epochs over which β rises from 0 to its value.
    warmup_epochs: float = 10.0
    # Cyclical schedule: number of cycles M over the run.
    cycles: int = 4
    # Cyclical schedule: fraction R of each cycle spent rising; the rest holds β.
    cycle_ratio: float = 0.5
    # Free bits λ in nats per latent dimension (Kingma et al. 2016); 0 turns it off.
    free_bits: float = 0.0
    # Clip the global gradient norm to this value; 0 turns clipping off.
    grad_clip: float = 1.0
    # Draw a fresh binary image per batch, x ~ Bernoulli(pixel intensity).
    binarize: bool = False
    # Seeds weights, batch order, binarisation and ε.
    seed: int = 0
    # Non-finite steps in a row before the weights roll back and training stops.
    max_bad_steps: int = 5
    # Aggressive training against a lagging encoder (He et al. 2019): encoder-only steps taken
    # before each decoder-only step during the first ``aggressive_epochs``; 0 turns it off.
    encoder_steps: int = 0
    # Epochs (from the run's start) during which ``encoder_steps`` applies; joint steps after.
    aggressive_epochs: float = 1.0

    def __post_init__(self) -> None:
        self.epochs = _check_int("epochs", self.epochs, 1, 100_000)
        self.batch_size = _check_int("batch_size", self.batch_size, 1, 65_536)
        self.lr = _check_float("learning rate", self.lr, 0.0, 1e6, lo_open=True)
        self.beta = _check_float("beta", self.beta, 0.0, 1e6)
        self.kl_schedule = _check_choice("kl_schedule", self.kl_schedule, KL_SCHEDULES)
        self.warmup_epochs = _check_float("warmup_epochs", self.warmup_epochs, 0.0, 100_000.0)
        self.cycles = _check_int("cycles", self.cycles, 1, 10_000)
        self.cycle_ratio = _check_float("cycle_ratio", self.cycle_ratio, 0.0, 1.0, lo_open=True)
        self.free_bits = _check_float("free_bits", self.free_bits, 0.0, 100.0)
        self.grad_clip = _check_float("grad_clip", self.grad_clip, 0.0, 1e6)
        if not isinstance(self.binarize, bool):
            raise ValueError(f"binarize must be true or false, got {self.binarize!r}.")
        self.seed = _check_int("seed", self.seed, 0, 2**31 - 1)
        self.max_bad_steps = _check_int("max_bad_steps", self.max_bad_steps, 1, 1000)
        self.encoder_steps = _check_int("encoder_steps", self.encoder_steps, 0, 100)
        self.aggressive_epochs = _check_float("aggressive_epochs", self.aggressive_epochs, 0.0, 100_000.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        return _from_dict(cls, data)


@dataclass
class RunInfo:
    """What a checkpoint records beside its weights."""

    # Registry name of the data set the model was trained on ("mnist-10k", "npz:...", ...).
    dataset: str = "mnist-10k"
    # Class names, index = label.
    class_names: list[str] = field(default_factory=list)
    # The training configuration of the last run.
    train: TrainConfig = field(default_factory=TrainConfig)
    # One record per finished epoch, oldest first.
    history: list[EpochRecord] = field(default_factory=list)
    # Optimiser steps taken so far (the model version).
    step: int = 0
    # Epochs finished so far.
    epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "class_names": list(self.class_names),
            "train": self.train.to_dict(),
            "history": [r.to_dict() for r in self.history],
            "step": self.step,
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, data: Any, latent_dim: int | None = None) -> RunInfo:
        """From a checkpoint's JSON, every part checked (``latent_dim``: the model's, which each
        record's per-dimension KL must match)."""
        if not isinstance(data, dict):
            raise ValueError("run metadata is not an object.")
        class_names = data.get("class_names", [])
        if not isinstance(class_names, list) or len(class_names) > MAX_CLASSES + 1000:
            raise ValueError("class_names must be a list.")
        return cls(
            dataset=str(data.get("dataset", "")),
            class_names=[str(c) for c in class_names],
            train=TrainConfig.from_dict(data.get("train", {})),
            history=history_from_dicts(data.get("history", []), latent_dim),
            step=_check_count("step", data.get("step", 0)),
            epoch=_check_count("epoch", data.get("epoch", 0)),
        )


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValueError(f"{name} must be a whole number of at least 0, got {reprlib.repr(value)}.")
    return value
