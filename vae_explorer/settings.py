"""Every Train setting, declared once: name, label, kind, range, step, default and help.

The Train tab's components, the checks of values sent to its API, the API's argument names and
order, and the command line's flags all follow from ``SETTINGS``, so one setting has one range
everywhere (a hosted limit may lower the top of a few: ``Setting.limit``). Each range lies
inside what the configs accept (config.py validates any config, also one built in code).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import ARCHS, GAUSSIAN_VARIANCES, KL_SCHEDULES, LIKELIHOODS, TrainConfig

KINDS = ("int", "float", "choice", "bool", "dataset")


@dataclass(frozen=True)
class Setting:
    """One Train control."""

    name: str  # the API argument, the config field and (with dashes) the command-line flag
    label: str  # what the UI shows, and what an error message calls it
    kind: str  # one of KINDS; "dataset" is a choice among the registered data sets
    default: Any  # the app's (and its API's) default
    help: str  # the one line under the control
    group: str  # "data", "model" (ModelConfig) or "train" (TrainConfig)
    lo: float | None = None  # lowest value allowed (numbers)
    hi: float | None = None  # highest value allowed (numbers), before a hosted limit
    step: float | None = None  # a slider's step; None: a number box (wide ranges, rates, seeds)
    choices: tuple[str, ...] = ()  # for "choice"
    flag: str | None = None  # the command line's flag, where it is not --name-with-dashes
    cli_default: Any = None  # the command line's default where it differs from the app's
    limit: str | None = None  # the hosted limit (a limits.Limits field) that caps the range's top

    def top(self, limits: Any = None) -> float:
        """The highest value allowed here: the range's, or a hosted limit's if lower."""
        return min(self.hi, getattr(limits, self.limit)) if limits is not None and self.limit else self.hi

    def parse(self, value: Any, limits: Any = None, datasets: tuple[str, ...] = ()) -> Any:
        """A value sent from anywhere (the API may send anything) → the setting's value, or a
        ValueError naming the setting and what it takes."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{self.label} must be true or false.")
            return value
        if self.kind in ("choice", "dataset"):
            options = tuple(datasets) if self.kind == "dataset" else self.choices
            if not isinstance(value, str) or value not in options:
                raise ValueError(f"{self.label} must be one of: {', '.join(options)}.")
            return value
        hi = self.top(limits)
        if self.kind == "int":
            lo, hi = int(self.lo), int(hi)
            if isinstance(value, int) and not isinstance(value, bool):
                if lo <= value <= hi:
                    return int(value)  # exact: through a float, 2**53 + 1 would come back as 2**53
            else:
                f = finite_number(value)
                if f is not None and f.is_integer() and lo <= f <= hi:
                    return int(f)
            raise ValueError(f"{self.label} must be a whole number from {lo} to {hi}.")
        f = finite_number(value)
        if f is None or not self.lo <= f <= hi:
            raise ValueError(f"{self.label} must be a number from {self.lo:g} to {hi:g}.")
        return f


def finite_number(value: Any) -> float | None:
    """float(value) for a real, finite number from an untrusted input; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _s(name, label, kind, default, help, group, **kw) -> Setting:
    return Setting(name, label, kind, default, help, group, **kw)


# In the order of the Train endpoints' arguments (a script's positional call must keep working).
SETTINGS: tuple[Setting, ...] = (
    _s("dataset", "Data set", "dataset", "mnist-10k",
       "mnist-10k: 10,000 real 28×28 digits, bundled; digits: 8×8, trains in a second", "data"),
    _s("arch", "Architecture", "choice", "mlp",
       "MLP, small CNN, or hierarchical: two latent levels z₂ → z₁ → x", "model", choices=ARCHS),
    _s("latent_dim", "Latent size", "int", 2, "2 can be plotted directly", "model", lo=1, hi=512,
       step=1, cli_default=20, limit="max_latent"),
    _s("hidden_dim", "Hidden size", "int", 400, "units in each hidden layer", "model", lo=8, hi=8192,
       step=8, flag="--hidden", limit="max_hidden"),
    _s("likelihood", "Likelihood p(x|z)", "choice", "bernoulli", "Bernoulli for [0, 1] pixels", "model",
       choices=LIKELIHOODS),
    _s("gaussian_variance", "Gaussian variance", "choice", "fixed", "fixed σ, or one learned per pixel",
       "model", choices=GAUSSIAN_VARIANCES),
    _s("gaussian_std", "Gaussian σ", "float", 0.1, "the fixed (or initial) pixel noise", "model",
       lo=0.001, hi=10.0),
    _s("binarize", "Binarize", "bool", False, "fresh 0/1 draw per batch", "train"),
    _s("conditional", "Conditional", "bool", False, "the label steers the decoder", "model"),
    _s("beta", "β", "float", 1.0, "KL weight; 1 = the ELBO", "train", lo=0.0, hi=100.0, step=0.1),
    _s("kl_schedule", "KL schedule", "choice", "constant",
       "linear/cyclical warm β up from 0 (against collapse)", "train", choices=KL_SCHEDULES),
    _s("warmup_epochs", "Warm-up epochs", "float", 10.0, "linear: epochs to reach β", "train",
       lo=0.0, hi=1000.0),
    _s("cycles", "Cycles", "int", 4, "cyclical: how many", "train", lo=1, hi=100, step=1),
    _s("cycle_ratio", "Rising part", "float", 0.5, "cyclical: share of a cycle", "train", lo=0.05,
       hi=1.0, step=0.05),
    _s("free_bits", "Free bits λ", "float", 0.0, "nats per dimension the KL is not pushed below",
       "train", lo=0.0, hi=10.0, step=0.05),
    _s("lr", "Learning rate", "float", 1e-3, "Adam; 1e-3 is a safe start", "train", lo=1e-6, hi=1.0),
    _s("batch_size", "Batch size", "int", 128, "images per step", "train", lo=8, hi=4096, step=8),
    _s("epochs", "Epochs", "int", 20, "passes over the training set", "train", lo=1, hi=100_000,
       step=1, cli_default=10, limit="max_epochs"),
    _s("grad_clip", "Gradient clip", "float", 1.0, "max gradient norm; 0 = off", "train", lo=0.0,
       hi=1000.0),
    _s("seed", "Seed", "int", 0, "same seed, same run", "train", lo=0, hi=2**31 - 1),
    _s("bottom_latent_dim", "Lower latent z₁ size", "int", 16,
       "hierarchical only; the latent size above is the top z₂. Free bits ≥ 0.5 keep z₂ in use",
       "model", lo=1, hi=512, step=1, limit="max_latent"),
    _s("autoencoder", "Plain autoencoder", "bool", False, "z = μ, no KL: to compare (mlp or conv)",
       "model"),
)  # fmt: skip

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(s.name for s in SETTINGS)  # the Train endpoints' argument names
MODEL_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.group == "model")
TRAIN_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.group == "train")


@dataclass(frozen=True)
class ParsedSettings:
    """Every Train setting, checked, as the core takes them."""

    dataset: str  # the data set's registry name
    model: dict[str, Any]  # ModelConfig fields (MODEL_KEYS) → value; the data set adds its shape
    train: TrainConfig  # the training configuration


def parse_all(
    values: Mapping[str, Any], limits: Any = None, datasets: tuple[str, ...] | None = None
) -> ParsedSettings:
    """Every setting of ``values`` (untrusted) checked; ``datasets`` None takes any data set name
    (the command line's ``npz:PATH``: the registry checks it when loading)."""

    def get(name: str) -> Any:
        setting = BY_NAME[name]
        if setting.kind == "dataset" and datasets is None:
            return str(values[name])
        return setting.parse(values[name], limits, datasets or ())

    train = TrainConfig(**{k: get(k) for k in TRAIN_KEYS})
    return ParsedSettings(get("dataset"), {k: get(k) for k in MODEL_KEYS}, train)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The command line's flag of every setting (``--latent-dim``, ``--hidden``, …)."""
    for s in SETTINGS:
        flag = s.flag or "--" + s.name.replace("_", "-")
        default = s.default if s.cli_default is None else s.cli_default
        if s.kind == "bool":
            parser.add_argument(flag, dest=s.name, action="store_true", help=s.help)
        elif s.kind == "choice":
            parser.add_argument(flag, dest=s.name, choices=s.choices, default=default, help=s.help)
        elif s.kind == "dataset":
            parser.add_argument(flag, dest=s.name, default=default, help=f"{s.help}; or npz:PATH")
        else:
            kind = int if s.kind == "int" else float
            span = f"{s.lo:g} to {s.hi:g}"
            parser.add_argument(flag, dest=s.name, type=kind, default=default, help=f"{s.help} ({span})")
