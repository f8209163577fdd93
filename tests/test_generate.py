"""Generation (vae_explorer/generate.py): prior samples and their temperature and labels,
decoding z, linear and spherical interpolation, traversal of one dimension, and image grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_explorer import generate
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.model import VAE


@pytest.fixture
def model(tiny_config: ModelConfig) -> VAE:
    return build_model(tiny_config, seed=0)


# --------------------------------------------------------------------------------------------
# Prior samples
# --------------------------------------------------------------------------------------------


def test_sample_prior_is_seeded(model: VAE) -> None:
    a = generate.sample_prior(model, n=6, seed=1)
    b = generate.sample_prior(model, n=6, seed=1)
    c = generate.sample_prior(model, n=6, seed=2)
    assert a.shape == (6, 1, 8, 8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert ((a >= 0) & (a <= 1)).all()
    # the images within one call differ (independent z)
    assert not torch.allclose(a[0], a[1])


def test_sample_prior_is_the_decode_of_scaled_normal_z(model: VAE) -> None:
    z = torch.randn((5, model.latent_dim), generator=torch.Generator().manual_seed(7)) * 0.5
    expected = torch.sigmoid(model.decode(z)).detach()
    torch.testing.assert_close(generate.sample_prior(model, n=5, temperature=0.5, seed=7), expected)


def test_temperature_zero_decodes_the_origin(model: VAE) -> None:
    imgs = generate.sample_prior(model, n=5, temperature=0.0, seed=3)
    origin = torch.sigmoid(model.decode(torch.zeros(1, model.latent_dim))).detach()
    # identical up to BLAS rounding (the last row of a batched matmul may take another kernel path)
    for img in imgs:
        torch.testing.assert_close(img, imgs[0], rtol=0, atol=1e-6)
    assert generate.sample_prior(model, n=5, temperature=1.0, seed=3).std(dim=0).max() > 1e-3
    torch.testing.assert_close(imgs[0], origin[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, r"n must be a whole number from 1 to 4096, got 0\."),
        ({"n": 5000}, r"n must be a whole number from 1 to 4096, got 5000\."),
        ({"n": 2.0}, r"n must be a whole number from 1 to 4096, got 2\.0\."),
        ({"temperature": -1.0}, r"temperature must be a number from 0 to 10, got -1\.0\."),
        ({"temperature": float("nan")}, r"temperature must be a number from 0 to 10, got nan\."),
        ({"label": 1}, r"this model is not conditional, so it takes no class label"),
    ],
)
def test_sample_prior_rejects_bad_arguments(model: VAE, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate.sample_prior(model, **kwargs)


def test_sample_prior_conditional_label() -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, conditional=True, num_classes=3)
    cvae = build_model(cfg, seed=0)
    a0 = generate.sample_prior(cvae, n=3, seed=0, label=0)
    a2 = generate.sample_prior(cvae, n=3, seed=0, label=2)
    assert not torch.allclose(a0, a2)
    # no label: the classes cycle 0, 1, 2
    cyc = generate.sample_prior(cvae, n=3, seed=0)
    torch.testing.assert_close(cyc[0], a0[0])
    torch.testing.assert_close(cyc[2], a2[2])
    with pytest.raises(ValueError, match=r"the label must be a class number from 0 to 2\."):
        generate.sample_prior(cvae, n=3, label=3)


def test_decode_z_rejects_bad_z(model: VAE) -> None:
    with pytest.raises(ValueError, match=r"z must have shape \(N, 3\), got \(2, 4\)"):
        generate.decode_z(model, torch.zeros(2, model.latent_dim + 1))
    with pytest.raises(ValueError, match=r"z must be finite numbers"):
        generate.decode_z(model, torch.tensor([[0.0, float("nan"), 0.0]]))


def test_decode_z_restores_training_mode(model: VAE) -> None:
    model.train()
    generate.decode_z(model, torch.zeros(1, model.latent_dim))
    assert model.training


# --------------------------------------------------------------------------------------------
# Interpolation and traversal
# --------------------------------------------------------------------------------------------


def test_slerp_endpoints_exact_and_norm_preserved() -> None:
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(5, generator=g)
    z1 = torch.randn(5, generator=g)
    z1 = z1 * (z0.norm() / z1.norm())  # equal norms
    path = generate.interpolate(z0, z1, steps=9, method="slerp")
    assert path.shape == (9, 5)
    assert torch.equal(path[0], z0)
    assert torch.equal(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.full((9,), z0.norm().item()), rtol=1e-5, atol=1e-5)
    # it follows the great circle: equal angular steps
    cos = (path[:-1] * path[1:]).sum(dim=1) / (path[:-1].norm(dim=1) * path[1:].norm(dim=1))
    torch.testing.assert_close(cos, torch.full_like(cos, cos[0].item()), rtol=1e-5, atol=1e-5)
    # whereas the linear path shrinks mid-way
    lin = generate.interpolate(z0, z1, steps=9, method="linear")
    assert lin[4].norm() < 0.99 * z0.norm()


def test_slerp_parallel_and_zero_endpoints() -> None:
    z0 = torch.tensor([1.0, 2.0, -1.0])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(generate.slerp(z0, 3 * z0, t), torch.lerp(z0, 3 * z0, t[:, None]))
    zero = torch.zeros(3)
    torch.testing.assert_close(generate.slerp(zero, z0, t), torch.lerp(zero, z0, t[:, None]))
    anti = generate.slerp(z0, -z0, t)
    assert torch.isfinite(anti).all()
    assert torch.equal(anti[0], z0) and torch.equal(anti[-1], -z0)


def test_slerp_antiparallel_falls_back_to_linear() -> None:
    z0 = torch.tensor([1.0, 2.0, -1.0])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(generate.slerp(z0, -z0, t), torch.lerp(z0, -z0, t[:, None]))


def test_linear_interpolation_midpoint_is_the_average() -> None:
    z0 = torch.tensor([1.0, -2.0, 0.5])
    z1 = torch.tensor([3.0, 4.0, -1.5])
    path = generate.interpolate(z0, z1, steps=3, method="linear")
    assert torch.equal(path[0], z0) and torch.equal(path[2], z1)
    torch.testing.assert_close(path[1], (z0 + z1) / 2)
    with pytest.raises(ValueError, match=r"interpolation must be linear or slerp, got 'cubic'"):
        generate.interpolate(z0, z1, method="cubic")
    with pytest.raises(ValueError, match=r"both endpoints must be latent vectors of the same size"):
        generate.interpolate(z0, torch.zeros(2))


def test_traverse_changes_only_the_chosen_dim() -> None:
    z = torch.tensor([0.3, -1.2, 2.0, 0.7])
    out = generate.traverse(z, dim=2, lo=-3.0, hi=3.0, steps=7)
    assert out.shape == (7, 4)
    others = [0, 1, 3]
    assert torch.equal(out[:, others], z[others].expand(7, 3))
    torch.testing.assert_close(out[:, 2], torch.linspace(-3, 3, 7))
    assert torch.equal(z, torch.tensor([0.3, -1.2, 2.0, 0.7]))  # input untouched
    for bad in (4, -1, True):
        with pytest.raises(ValueError, match=rf"dimension must be from 0 to 3, got {bad}\."):
            generate.traverse(z, dim=bad)
    with pytest.raises(ValueError, match=r"the traversal range must be finite numbers within ±100"):
        generate.traverse(z, dim=0, lo=float("-inf"))


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def test_to_grid_grey() -> None:
    imgs = torch.zeros((5, 1, 8, 8))
    imgs[1] = 1.0
    imgs[2] = 0.5
    grid = generate.to_grid(imgs, nrow=3, padding=1)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1)
    assert grid[1, 1] == 0 and grid[1, 10] == 255 and grid[1, 19] == 128  # image 0, 1, 2
    assert grid[0, 0] == 255  # padding is white


def test_to_grid_colour_and_clamping() -> None:
    imgs = torch.full((2, 3, 4, 4), 2.0)
    imgs[:, 0] = -1.0
    grid = generate.to_grid(imgs, nrow=2, padding=0)
    assert grid.dtype == np.uint8 and grid.shape == (4, 8, 3)
    assert (grid[..., 0] == 0).all() and (grid[..., 1:] == 255).all()
