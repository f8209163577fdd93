"""ELBO surgery: the average KL = I(x; z) + KL(q(z) ‖ p(z)), against closed forms and quadrature."""

import math

import numpy as np
import pytest
import torch

from vae_explorer.distributions import DiagonalGaussian
from vae_explorer.information import information_split


def _posteriors(n: int, d: int, seed: int = 0, spread: float = 1.0) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, d, generator=g)
    logvar = torch.empty(n, d).uniform_(-3.0, 0.5, generator=g)
    return DiagonalGaussian(mu, logvar)


def test_the_two_parts_add_up_to_the_closed_form_kl_whatever_the_draws():
    q = _posteriors(300, 5)
    closed = float(q.kl().sum(dim=1).mean())
    for seed in (0, 1):
        s = information_split(q, samples=2, generator=torch.Generator().manual_seed(seed + 100))
        assert s.kl == pytest.approx(closed, rel=1e-5)
        assert s.mutual_info + s.marginal_kl == pytest.approx(s.kl, rel=1e-12)


def test_identical_posteriors_carry_no_information():
    mu, lv = torch.tensor([[0.7, -1.2]]).repeat(50, 1), torch.tensor([[-1.0, 0.3]]).repeat(50, 1)
    s = information_split(DiagonalGaussian(mu, lv), generator=torch.Generator().manual_seed(0))
    assert s.mutual_info == pytest.approx(0.0, abs=1e-9)
    # q(z) is then that one Gaussian: its KL to the prior in closed form
    assert s.marginal_kl == pytest.approx(float(DiagonalGaussian(mu[:1], lv[:1]).kl().sum()), rel=1e-6)


def test_well_separated_posteriors_reach_log_n():
    mu = torch.tensor([[-40.0, 0.0], [40.0, 0.0], [0.0, 40.0], [0.0, -40.0]])
    s = information_split(DiagonalGaussian(mu, torch.full((4, 2), -4.0)), samples=3)
    assert s.log_n == pytest.approx(math.log(4))
    assert s.mutual_info == pytest.approx(math.log(4), abs=1e-6)


def test_information_agrees_with_quadrature_in_one_dimension():
    """I = (1/N) Σ_n ∫ q_n(z) log(q_n(z) / q(z)) dz on a fine grid, for overlapping posteriors."""
    q = _posteriors(6, 1, seed=3, spread=0.8)
    mu, sd = q.mean[:, 0].double().numpy(), q.std[:, 0].double().numpy()
    z = np.linspace(-8, 8, 400_001)
    dens = np.exp(-0.5 * ((z[None] - mu[:, None]) / sd[:, None]) ** 2) / (
        sd[:, None] * math.sqrt(2 * math.pi)
    )
    mix = dens.mean(axis=0)
    integrand = dens * (np.log(np.maximum(dens, 1e-300)) - np.log(mix))
    exact = float(np.trapezoid(integrand, z, axis=1).mean())
    s = information_split(q, samples=20_000, generator=torch.Generator().manual_seed(1))
    assert 0.2 < exact < math.log(6)  # overlapping: neither 0 nor saturated, so the test has teeth
    assert s.mutual_info == pytest.approx(exact, abs=0.01)


def test_the_information_lies_between_zero_and_log_n():
    for seed, spread in ((0, 0.1), (1, 1.0), (2, 5.0)):
        q = _posteriors(200, 3, seed, spread)
        s = information_split(q, generator=torch.Generator().manual_seed(seed + 100))
        assert 0 <= s.mutual_info <= min(s.log_n, s.kl) and s.marginal_kl >= 0


def test_the_same_seed_gives_the_same_split():
    q = _posteriors(100, 4)
    a = information_split(q, generator=torch.Generator().manual_seed(5))
    b = information_split(q, generator=torch.Generator().manual_seed(5))
    assert a == b


def test_points_and_bad_arguments_are_refused():
    mu = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="autoencoder"):
        information_split(DiagonalGaussian(mu, mu, deterministic=True))
    with pytest.raises(ValueError, match="at least one draw"):
        information_split(DiagonalGaussian(mu, mu), samples=0)
    with pytest.raises(ValueError, match="at least one input"):
        information_split(DiagonalGaussian(torch.zeros(0, 2), torch.zeros(0, 2)))


def test_each_epoch_records_the_split_and_the_kl_plot_draws_it(tiny_data, tiny_config):
    """evaluate → EpochRecord → the Train tab's KL figure; an autoencoder has no split (NaN)."""
    import dataclasses
    import json

    from conftest import epoch_record

    from vae_explorer.build import build_model
    from vae_explorer.evaluate import evaluate
    from vae_explorer.ui.plots import kl_figure

    model = build_model(tiny_config, seed=0)
    ev = evaluate(model, tiny_data.x_test, seed=0)
    assert ev.mutual_info + ev.marginal_kl == pytest.approx(ev.kl, rel=1e-5)
    assert 0 <= ev.mutual_info <= math.log(len(tiny_data.x_test))
    ae = evaluate(build_model(dataclasses.replace(tiny_config, autoencoder=True), seed=0), tiny_data.x_test)
    assert math.isnan(ae.mutual_info) and math.isnan(ae.marginal_kl)

    history = [
        epoch_record(epoch=1, step=10, mutual_info=0.4),
        epoch_record(epoch=2, step=20, mutual_info=0.7),
    ]
    traces = {t["name"]: t for t in json.loads(kl_figure([], history).plot)["data"]}
    assert traces["I(x; z), test"]["y"] == [0.4, 0.7] and traces["I(x; z), test"]["x"] == [10, 20]
    unmeasured = [epoch_record(mutual_info=math.nan)]  # a file saved before the split
    assert "I(x; z), test" not in {t["name"] for t in json.loads(kl_figure([], unmeasured).plot)["data"]}
