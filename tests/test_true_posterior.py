"""The grid's p(z|x) against a linear Gaussian decoder's closed-form posterior and evidence."""

import numpy as np
import pytest
import torch
from linear_gaussian import linear_gaussian

from vae_explorer.config import ModelConfig
from vae_explorer.model import VAE
from vae_explorer.true_posterior import MASS_LEVELS, posterior_grid


def _tilted():
    """Two latent directions that the decoder mixes: the posterior is a tilted ellipse."""
    g = torch.Generator().manual_seed(1)
    w = 0.15 * torch.randn(16, 2, generator=g)
    w[:, 1] += 0.8 * w[:, 0]  # correlated columns: Σ is not diagonal
    return linear_gaussian(w, s=0.5)


def test_the_grid_matches_the_closed_form_posterior_and_evidence():
    lg = _tilted()
    x = (lg.b + lg.w @ torch.tensor([0.8, -0.5], dtype=torch.float64)).float()
    mean, cov = lg.posterior(x)
    assert abs(float(cov[0, 1])) / float(cov[0, 0].sqrt() * cov[1, 1].sqrt()) > 0.3  # really tilted
    grid = posterior_grid(lg.model, x.reshape(1, 1, 4, 4), None, (-5, 5, -5, 5), resolution=200)
    np.testing.assert_allclose(grid.mean, mean.numpy(), atol=2e-3)
    np.testing.assert_allclose(grid.cov, cov.numpy(), atol=2e-3)
    assert grid.log_evidence == pytest.approx(lg.log_evidence(x), abs=1e-3)
    # normalised on the grid: the cells' probabilities add up to 1
    cell = (grid.xs[1] - grid.xs[0]) * (grid.ys[1] - grid.ys[0])
    assert np.exp(grid.log_density).sum() * cell == pytest.approx(1.0, abs=1e-9)


def test_the_mass_thresholds_hold_their_share_of_the_mass():
    lg = _tilted()
    x = lg.b.float()
    grid = posterior_grid(lg.model, x.reshape(1, 1, 4, 4), None, (-5, 5, -5, 5), resolution=150)
    cell = (grid.xs[1] - grid.xs[0]) ** 2
    p = np.exp(grid.log_density) * cell
    assert grid.thresholds == sorted(grid.thresholds, reverse=True)  # 50% region inside the 90% one
    for level, t in zip(MASS_LEVELS, grid.thresholds, strict=True):
        inside = p[grid.log_density >= t].sum()
        assert level <= inside < level + 0.01
    # a Gaussian's 50% region: log p above the peak minus log 2 (its χ²₂ quantile is 2 log 2)
    assert grid.thresholds[0] == pytest.approx(grid.log_density.max() - np.log(2.0), abs=0.02)


def test_models_without_a_2d_one_level_posterior_are_refused():
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="2-D latent"):
        posterior_grid(VAE(ModelConfig(input_shape=(1, 4, 4), latent_dim=3)), x, None, (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="autoencoder"):
        ae = VAE(ModelConfig(input_shape=(1, 4, 4), latent_dim=2, autoencoder=True))
        posterior_grid(ae, x, None, (-1, 1, -1, 1))
    model = VAE(ModelConfig(input_shape=(1, 4, 4), latent_dim=2))
    with pytest.raises(ValueError, match="extent"):
        posterior_grid(model, x, None, (1, -1, -1, 1))
    with pytest.raises(ValueError, match="resolution"):
        posterior_grid(model, x, None, (-1, 1, -1, 1), resolution=1000)
