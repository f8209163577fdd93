"""The reparameterization, one draw at a time: seeded ε, z = μ + σ ⊙ ε exactly, the decoded draw."""

from __future__ import annotations

import pytest
import torch

from vae_explorer import reparam
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.distributions import DiagonalGaussian
from vae_explorer.generate import decode_z


@pytest.fixture
def model(tiny_config: ModelConfig):
    return build_model(tiny_config, seed=0)


def _x(seed: int = 0) -> torch.Tensor:
    return torch.rand((1, 1, 8, 8), generator=torch.Generator().manual_seed(seed))


def test_the_same_seed_gives_the_same_eps_and_z_is_exactly_mu_plus_sigma_eps(model) -> None:
    a, b = reparam.draw(model, _x(), seed=7), reparam.draw(model, _x(), seed=7)
    assert torch.equal(a.eps, b.eps) and torch.equal(a.z, b.z) and torch.equal(a.image, b.image)
    assert torch.equal(a.z, a.mu + a.sigma * a.eps)
    assert torch.equal(a.sigma, torch.exp(0.5 * a.logvar))
    other = reparam.draw(model, _x(), seed=8)
    assert not torch.equal(other.eps, a.eps) and torch.equal(other.mu, a.mu)
    assert a.z.shape == a.mu.shape == (3,) and a.image.shape == (1, 8, 8)


def test_the_draw_is_the_one_the_model_makes_in_training(model) -> None:
    """ε from the seed is what DiagonalGaussian.sample draws with a generator seeded alike,
    and the image is the decode of z; the global random state is left alone."""
    before = torch.random.get_rng_state()
    d = reparam.draw(model, _x(), seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    z = DiagonalGaussian(d.mu[None], d.logvar[None]).sample(torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(z, d.z, rtol=0, atol=1e-6)
    torch.testing.assert_close(d.image, decode_z(model, d.z[None])[0])
    torch.testing.assert_close(d.mean_image, decode_z(model, d.mu[None])[0])


def test_the_trail_is_the_previous_seeds_draws(model) -> None:
    d = reparam.draw(model, _x(), seed=5, trail=3)
    assert d.trail.shape == (3, 3)
    for k, s in enumerate((2, 3, 4)):
        assert torch.equal(d.trail[k], reparam.draw(model, _x(), seed=s).z)
    assert reparam.draw(model, _x(), seed=1, trail=3).trail.shape == (1, 3)  # no negative seeds


def test_a_conditional_model_uses_the_label_and_an_autoencoder_has_no_noise() -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, num_classes=3, conditional=True)
    cond = build_model(cfg, seed=0)
    a = reparam.draw(cond, _x(), torch.tensor([0]), seed=1)
    b = reparam.draw(cond, _x(), torch.tensor([2]), seed=1)
    assert torch.equal(a.eps, b.eps) and not torch.equal(a.mu, b.mu)
    ae = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, autoencoder=True))
    d = reparam.draw(ae, _x(), seed=4)
    assert torch.equal(d.sigma, torch.zeros(2)) and torch.equal(d.z, d.mu)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": True}, "seed must be a whole number"),
        ({"seed": 2**63}, "seed must be a whole number"),
        ({"trail": 1000}, "trail must be"),
        ({"x": torch.zeros(2, 1, 8, 8)}, "one input of shape"),
    ],
)
def test_bad_arguments_are_refused(model, kwargs, message) -> None:
    args = {"x": _x(), "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        reparam.draw(model, **args)
