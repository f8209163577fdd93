"""KL weight schedules: β as a function of training progress t (epochs)."""

from __future__ import annotations

import itertools

import pytest

from vae_explorer.config import TrainConfig
from vae_explorer.schedules import beta_at


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 7.5, 1000.0])
def test_constant(t: float) -> None:
    assert beta_at(TrainConfig(kl_schedule="constant", beta=0.7), t) == 0.7


def test_linear_rises_then_holds() -> None:
    cfg = TrainConfig(kl_schedule="linear", beta=2.0, warmup_epochs=4.0, epochs=10)
    assert beta_at(cfg, 0.0) == 0.0
    assert beta_at(cfg, 1.0) == pytest.approx(0.5)
    assert beta_at(cfg, 2.0) == pytest.approx(1.0)
    assert beta_at(cfg, 3.0) == pytest.approx(1.5)
    assert beta_at(cfg, 4.0) == pytest.approx(2.0)
    for t in (4.5, 9.99, 50.0):
        assert beta_at(cfg, t) == 2.0
    # strictly increasing during warm-up
    vals = [beta_at(cfg, 0.1 * i) for i in range(41)]
    assert all(b > a for a, b in itertools.pairwise(vals))


def test_linear_with_zero_warmup_is_beta_immediately() -> None:
    cfg = TrainConfig(kl_schedule="linear", beta=1.5, warmup_epochs=0.0)
    assert beta_at(cfg, 0.0) == 1.5
    assert beta_at(cfg, 0.01) == 1.5


def test_cyclical_period_two() -> None:
    cfg = TrainConfig(kl_schedule="cyclical", beta=1.0, epochs=8, cycles=4, cycle_ratio=0.5)
    assert beta_at(cfg, 0.0) == 0.0
    assert beta_at(cfg, 0.5) == pytest.approx(0.5)
    assert beta_at(cfg, 0.25) == pytest.approx(0.25)
    for t in (1.0, 1.3, 1.7, 1.999):
        assert beta_at(cfg, t) == pytest.approx(1.0)
    assert beta_at(cfg, 2.0) == 0.0  # the next cycle restarts at 0
    # period 2: the same value two epochs later, in every cycle
    for t in (0.1, 0.5, 0.9, 1.4):
        for c in (1, 2, 3):
            assert beta_at(cfg, t + 2 * c) == pytest.approx(beta_at(cfg, t), abs=1e-12)


def test_cyclical_scales_with_beta_and_ratio() -> None:
    cfg = TrainConfig(kl_schedule="cyclical", beta=4.0, epochs=10, cycles=2, cycle_ratio=0.25)
    # period 5, rises over the first 1.25 epochs of each cycle
    assert beta_at(cfg, 0.625) == pytest.approx(2.0)
    assert beta_at(cfg, 1.25) == pytest.approx(4.0)
    assert beta_at(cfg, 4.9) == pytest.approx(4.0)
    assert beta_at(cfg, 5.0) == 0.0
    assert beta_at(cfg, 5.625) == pytest.approx(2.0)


@pytest.mark.parametrize("schedule", ["constant", "linear", "cyclical"])
def test_negative_progress_raises(schedule: str) -> None:
    with pytest.raises(ValueError, match=r"training progress must be non-negative, got -0\.1"):
        beta_at(TrainConfig(kl_schedule=schedule), -0.1)
