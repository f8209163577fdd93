"""The gaps of one image against a linear Gaussian decoder, whose posterior and evidence have
closed forms: with a diagonal true posterior the optimised q reaches log p(x) exactly; with a
tilted one, the best diagonal Gaussian misses it by ½ (Σ_d log Λ_dd − log det Λ)."""

import math

import pytest
import torch
from linear_gaussian import linear_gaussian

from vae_explorer.config import ModelConfig
from vae_explorer.gaps import image_gaps
from vae_explorer.model import VAE


def _x(lg, z):
    return (lg.b + lg.w @ torch.tensor(z, dtype=torch.float64)).float().reshape(1, 1, 4, 4)


def test_a_diagonal_true_posterior_is_found_and_closes_both_gaps():
    w = torch.zeros(16, 2)
    w[:8, 0], w[8:, 1] = 0.3, 0.2  # orthogonal columns: WᵀW and so Σ are diagonal
    lg = linear_gaussian(w)
    x = _x(lg, [1.0, -0.7])
    g = image_gaps(lg.model, x, k=2000, steps=300, seed=0)
    truth = -lg.log_evidence(x.flatten())
    assert g.optimised_neg_elbo == pytest.approx(truth, abs=0.05)
    assert g.iwae == pytest.approx(truth, abs=0.02)
    assert g.approximation_gap == pytest.approx(0.0, abs=0.05)
    mean, cov = lg.posterior(x.flatten())
    assert torch.allclose(g.q_optimised.mean[0].double(), mean, atol=0.05)
    assert torch.allclose(g.q_optimised.logvar[0].double().exp(), cov.diagonal(), rtol=0.15)
    # the random encoder is far from it: a real amortization gap
    assert g.amortization_gap > 1.0
    assert g.amortization_gap == pytest.approx(g.encoder_neg_elbo - g.optimised_neg_elbo)


def test_a_tilted_true_posterior_leaves_the_closed_form_approximation_gap():
    gen = torch.Generator().manual_seed(1)
    w = 0.15 * torch.randn(16, 2, generator=gen)
    w[:, 1] = 0.5 * w[:, 1] + w[:, 0]
    lg = linear_gaussian(w)
    x = _x(lg, [0.5, 0.5])
    _, cov = lg.posterior(x.flatten())
    precision = torch.linalg.inv(cov)
    closed = 0.5 * float(precision.diagonal().log().sum() - torch.logdet(precision))
    assert closed > 0.2  # the tilt is large enough to see
    g = image_gaps(lg.model, x, k=5000, steps=300, seed=0)
    truth = -lg.log_evidence(x.flatten())
    assert g.iwae == pytest.approx(truth, abs=0.03)  # K = 5000 from q*: −log p(x)
    assert g.optimised_neg_elbo - truth == pytest.approx(closed, abs=0.08)
    assert g.approximation_gap == pytest.approx(closed, abs=0.1)


def test_the_bounds_are_ordered_on_a_real_model():
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=32))
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    for seed in (0, 1):
        g = image_gaps(model, x, k=500, steps=100, seed=seed)
        assert g.optimised_neg_elbo <= g.encoder_neg_elbo  # kept the best q, the start included
        assert g.iwae <= g.optimised_neg_elbo + 0.05  # IWAE is tighter, up to Monte Carlo noise
    again = image_gaps(model, x, k=500, steps=100, seed=1)
    figures = ("encoder_neg_elbo", "optimised_neg_elbo", "iwae")
    assert [getattr(again, f) for f in figures] == [getattr(g, f) for f in figures]  # seeded
    assert all(p.grad is None for p in model.parameters())  # the model itself was not touched


def test_inputs_the_gaps_cannot_take_are_refused():
    x = torch.rand(1, 1, 8, 8)
    ae = VAE(ModelConfig(input_shape=(1, 8, 8), autoencoder=True))
    with pytest.raises(ValueError, match="autoencoder"):
        image_gaps(ae, x)
    hier = __import__("vae_explorer.build", fromlist=["build_model"]).build_model(
        ModelConfig(input_shape=(1, 8, 8), arch="hierarchical")
    )
    with pytest.raises(ValueError, match="hierarchical"):
        image_gaps(hier, x)
    model = VAE(ModelConfig(input_shape=(1, 8, 8)))
    with pytest.raises(ValueError, match="one image"):
        image_gaps(model, torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="k must be"):
        image_gaps(model, x, k=0)
    assert math.isfinite(image_gaps(model, x, k=10, steps=0).iwae)
