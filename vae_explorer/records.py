"""What training reports, as typed records: a StepRecord per optimiser step, an EpochRecord per
finished epoch (the history a checkpoint keeps), a StopRecord when a run ends early.

The trainer yields them, the UI and the CLI show them, diagnostics and the lab read them; they
become JSON only at the checkpoint boundary (``EpochRecord.to_dict`` / ``from_dict``), where an
old file's records are brought up to date and a crafted file's are refused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MAX_LEVELS = 2  # stochastic levels a model here has at most (hierarchical.py)


@dataclass
class StepRecord:
    """One optimiser step (or a skipped, non-finite one)."""

    epoch: int  # epoch this step belongs to (0-based)
    step: int  # optimiser steps taken so far, this one included
    loss: float  # the objective minimised, nats per image: recon + β·KL (free bits included)
    recon: float  # E_q[−log p(x|z)] on the batch, one sampled z
    kl: float  # KL(q(z|x) ‖ p(z)) on the batch, summed over the levels
    beta: float  # the β this step used (the KL schedule's value)
    grad_norm: float  # global gradient norm before clipping (NaN when the loss was not finite)
    skipped: bool  # True when the step was non-finite and not applied
    kl_levels: list[float] = field(default_factory=list)  # KL of each level, bottom first
    part: str = "both"  # what the step trained: "both", "encoder" or "decoder" (the other held still)


@dataclass
class EpochRecord:
    """One finished epoch: the training averages and a test evaluation. Losses in nats per image."""

    epoch: int  # 1-based number of the finished epoch
    step: int  # optimiser steps taken so far
    train_loss: float  # mean objective over the epoch: recon + β·KL (free bits included)
    train_recon: float  # mean reconstruction term over the epoch
    train_kl: float  # mean KL term over the epoch (the true KL, whatever β)
    train_neg_elbo: float  # recon + KL (β = 1): comparable with test_loss
    beta: float  # β at the end of the epoch
    test_loss: float  # test negative ELBO with a sampled z, β = 1
    test_recon: float  # its reconstruction term
    test_kl: float  # its KL term, summed over the levels
    test_kl_levels: list[float]  # test KL of each level, bottom first (one for a one-level VAE)
    kl_per_dim: list[float]  # (D,) test KL per dimension of the top latent
    active_units: int  # dimensions with Var_x(μ_d) > 0.01 (Burda et al. 2015)
    sharpness: float  # test reconstructions' edge energy / the inputs' (diagnostics.sharpness)
    collapsed: bool  # posterior collapse: KL ≈ 0 or no active unit
    prior_gap: float  # KL(moment-matched aggregate posterior ‖ N(0, I)), nats
    seconds: float  # wall time of the epoch's training steps (evaluation excluded)
    images_per_s: float  # training images per second over those steps
    skipped_steps: int  # non-finite steps skipped this epoch
    # ELBO surgery of the top latent's test KL (information.py), first 2,000 test images; NaN for
    # an autoencoder and in files saved before it was measured
    mutual_info: float = math.nan  # I(x; z) in nats, at most log N
    marginal_kl: float = math.nan  # KL(q(z) ‖ p(z)) in nats: test KL = mutual_info + marginal_kl

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, latent_dim: int | None = None) -> EpochRecord:
        """A record read from a checkpoint: brought up to date (files saved before hierarchical
        models or the sharpness figure lack those fields), then checked field by field, so that
        a crafted history cannot crash the plots and diagnostics that read it. Values may be
        non-finite (an infinite prior gap is a real measurement); types must be right."""
        if not isinstance(data, dict):
            raise ValueError("a training-history record must be an object.")
        data = dict(data)
        if "test_kl_levels" not in data and "test_kl" in data:
            data["test_kl_levels"] = [data["test_kl"]]  # saved before hierarchical models existed
        data.setdefault("sharpness", math.nan)  # saved before sharpness was measured: unknown
        data.setdefault("mutual_info", math.nan)  # saved before the information split
        data.setdefault("marginal_kl", math.nan)
        if set(data) != EPOCH_FIELDS:
            raise ValueError("a training-history record does not have the fields of an epoch record.")
        for key, value in data.items():
            if key == "kl_per_dim":
                ok = _numbers(value) and (latent_dim is None or len(value) == latent_dim)
            elif key == "test_kl_levels":
                ok = _numbers(value) and len(value) <= MAX_LEVELS
            elif key == "collapsed":
                ok = isinstance(value, bool)
            elif key in COUNT_FIELDS:
                ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
            else:
                ok = _number(value)
            if not ok:
                raise ValueError(f"a training-history record has an invalid {key!r}.")
        return cls(**data)


@dataclass
class StopRecord:
    """A run that ended before its last epoch."""

    epoch: int  # epochs finished when it stopped
    step: int  # optimiser steps taken when it stopped
    reason: str  # a sentence for the user
    rolled_back: bool  # True when the weights were restored to the last good snapshot


Record = StepRecord | EpochRecord | StopRecord

EPOCH_FIELDS = frozenset(f.name for f in fields(EpochRecord))
COUNT_FIELDS = ("epoch", "step", "active_units", "skipped_steps")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_number(v) for v in value)


def history_from_dicts(raw: Any, latent_dim: int | None = None) -> list[EpochRecord]:
    """A checkpoint's history (a JSON list) → typed records, each checked."""
    if not isinstance(raw, list) or len(raw) > 1_000_000:
        raise ValueError("the training history must be a list of epoch records.")
    return [EpochRecord.from_dict(r, latent_dim) for r in raw]
