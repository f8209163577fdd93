"""KL weight schedules: β as a function of training progress t (in epochs, fractional)."""

from __future__ import annotations

from .config import TrainConfig


def beta_at(cfg: TrainConfig, t: float) -> float:
    """β after ``t`` epochs of training (t = epoch + step / steps_per_epoch).

    constant: β.
    linear:   β · min(1, t / warmup_epochs) — KL annealing (Bowman et al. 2016).
    cyclical: Fu et al. 2019 — the run of ``epochs`` is cut into M = ``cycles`` periods; in each,
              β rises linearly over the first R = ``cycle_ratio`` of the period, then holds:
              β · min(1, τ / R) with τ = (t mod period) / period.
    """
    if t < 0:
        raise ValueError(f"training progress must be non-negative, got {t}.")
    if cfg.kl_schedule == "constant":
        return cfg.beta
    if cfg.kl_schedule == "linear":
        if cfg.warmup_epochs <= 0:
            return cfg.beta
        return cfg.beta * min(1.0, t / cfg.warmup_epochs)
    period = cfg.epochs / cfg.cycles
    tau = (t % period) / period
    return cfg.beta * min(1.0, tau / cfg.cycle_ratio)
