"""The VAE module (vae_explorer/model.py): shapes, conditioning, the log-variance clamp, the
Gaussian likelihood's variance and soft labels. (Building and seeding: test_build.py;
ModelConfig validation: test_config.py.)"""

from __future__ import annotations

import math

import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.model import VAE, VAEOutput


def _x(shape, n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_shapes(arch: str, shape: tuple[int, int, int]) -> None:
    cfg = ModelConfig(input_shape=shape, arch=arch, latent_dim=3, hidden_dim=16)
    model = build_model(cfg, seed=0)
    x = _x(shape, n=5)
    _q = model.encode(x)
    mu, logvar = _q.mean, _q.logvar
    assert mu.shape == (5, 3) and logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, *shape)
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, VAEOutput)
    assert out.recon.shape == (5, *shape) and out.z.shape == (5, 3)
    # the sample is mu + σ ε: different from mu, seeded
    assert not torch.allclose(out.z, out.mu)
    again = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.z, again.z) and torch.equal(out.recon, again.recon)
    # the images come from the right likelihood's mean
    img = model.mean_image(out.recon)
    torch.testing.assert_close(img, torch.sigmoid(out.recon))


def test_conv_colour_non_square() -> None:
    cfg = ModelConfig(input_shape=(3, 8, 12), arch="conv", latent_dim=2, hidden_dim=8)
    model = build_model(cfg)
    x = _x((3, 8, 12), n=2)
    assert model.decode(model.encode(x).mean).shape == (2, 3, 8, 12)


def test_encoder_depends_on_each_image() -> None:
    """Per-image encoding: encoding a batch equals encoding each image alone."""
    cfg = ModelConfig(input_shape=(1, 8, 8), arch="conv", latent_dim=3, hidden_dim=16)
    model = build_model(cfg, seed=1)
    x = _x((1, 8, 8), n=3, seed=2)
    _q = model.encode(x)
    mu, lv = _q.mean, _q.logvar
    for i in range(3):
        qi = model.encode(x[i : i + 1])
        mi, li = qi.mean, qi.logvar
        torch.testing.assert_close(mi[0], mu[i])
        torch.testing.assert_close(li[0], lv[i])
    assert not torch.allclose(mu[0], mu[1])


# --------------------------------------------------------------------------------------------
# Conditional VAE
# --------------------------------------------------------------------------------------------


@pytest.fixture(params=["mlp", "conv"])
def cvae(request) -> VAE:
    cfg = ModelConfig(
        input_shape=(1, 8, 8),
        arch=request.param,
        latent_dim=3,
        hidden_dim=16,
        conditional=True,
        num_classes=3,
    )
    return build_model(cfg, seed=0)


def test_conditional_requires_labels(cvae: VAE) -> None:
    x = _x((1, 8, 8), n=2)
    with pytest.raises(ValueError, match=r"this is a conditional model: a class label is required"):
        cvae.encode(x)
    with pytest.raises(ValueError, match=r"this is a conditional model: a class label is required"):
        cvae.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"this is a conditional model: a class label is required"):
        cvae(x)


def test_conditional_labels_change_the_output(cvae: VAE) -> None:
    x = _x((1, 8, 8), n=2)
    z = torch.randn((2, 3), generator=torch.Generator().manual_seed(0))
    d0 = cvae.decode(z, torch.tensor([0, 0]))
    d1 = cvae.decode(z, torch.tensor([1, 1]))
    assert not torch.allclose(d0, d1)
    mu0 = cvae.encode(x, torch.tensor([0, 0])).mean
    mu2 = cvae.encode(x, torch.tensor([2, 2])).mean
    assert not torch.allclose(mu0, mu2)
    # a per-image label acts per image
    mixed = cvae.decode(z, torch.tensor([0, 1]))
    torch.testing.assert_close(mixed[0], d0[0])
    torch.testing.assert_close(mixed[1], d1[1])


def test_conditional_scalar_label_broadcasts(cvae: VAE) -> None:
    z = torch.randn((4, 3), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(cvae.decode(z, torch.tensor(2)), cvae.decode(z, torch.full((4,), 2)))
    torch.testing.assert_close(cvae.decode(z, 1), cvae.decode(z, torch.ones(4, dtype=torch.long)))
    x = _x((1, 8, 8), n=4)
    torch.testing.assert_close(
        cvae.encode(x, torch.tensor([1])).mean, cvae.encode(x, torch.ones(4).long()).mean
    )


@pytest.mark.parametrize("bad", [3, -1, 100])
def test_conditional_out_of_range_label_raises(cvae: VAE, bad: int) -> None:
    z = torch.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must be between 0 and 2"):
        cvae.decode(z, torch.tensor([0, bad]))
    with pytest.raises(ValueError, match=r"labels must be between 0 and 2"):
        cvae.encode(_x((1, 8, 8), n=2), torch.tensor([bad, 0]))


def test_conditional_wrong_number_of_labels_raises(cvae: VAE) -> None:
    with pytest.raises(ValueError, match=r"got 2 labels for 3 inputs"):
        cvae.decode(torch.zeros((3, 3)), torch.tensor([0, 1]))


def test_non_conditional_ignores_labels(tiny_config: ModelConfig) -> None:
    model = build_model(tiny_config, seed=0)
    x = _x((1, 8, 8), n=2)
    z = torch.randn((2, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.decode(z, torch.tensor([0, 1])), model.decode(z))
    assert torch.equal(model.decode(z, torch.tensor([99, -5])), model.decode(z))
    assert torch.equal(model.encode(x, torch.tensor([1, 2])).mean, model.encode(x).mean)


# --------------------------------------------------------------------------------------------
# The log-variance clamp
# --------------------------------------------------------------------------------------------


def _force_logvar(model: VAE, value: float) -> None:
    head = model.encoder[-1]  # the mlp's last Linear: [mu | logvar]
    d = model.latent_dim
    with torch.no_grad():
        head.weight[d:].zero_()
        head.bias[d:].fill_(value)


@pytest.mark.parametrize("value", [1000.0, -1000.0])
def test_logvar_is_clamped(value: float) -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, logvar_min=-6.0, logvar_max=4.0)
    model = build_model(cfg)
    _force_logvar(model, value)
    x = _x((1, 8, 8))
    lv = model.encode(x).logvar
    expected = 4.0 if value > 0 else -6.0
    assert torch.equal(lv, torch.full_like(lv, expected))
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.z).all() and torch.isfinite(out.recon).all()


@pytest.mark.parametrize("value", [1000.0, -1000.0])
def test_logvar_unclamped_when_clamp_off(value: float) -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, clamp_logvar=False)
    model = build_model(cfg)
    _force_logvar(model, value)
    lv = model.encode(_x((1, 8, 8))).logvar
    assert torch.equal(lv, torch.full_like(lv, value))


def test_logvar_within_range_is_untouched() -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    model = build_model(cfg)
    _force_logvar(model, -2.5)
    lv = model.encode(_x((1, 8, 8))).logvar
    assert torch.equal(lv, torch.full_like(lv, -2.5))


# --------------------------------------------------------------------------------------------
# The Gaussian likelihood's variance
# --------------------------------------------------------------------------------------------


def test_gaussian_learned_variance_is_a_parameter() -> None:
    cfg = ModelConfig(
        input_shape=(1, 8, 8),
        latent_dim=2,
        hidden_dim=8,
        likelihood="gaussian",
        gaussian_variance="learned",
        gaussian_std=0.3,
    )
    model = build_model(cfg)
    params = dict(model.named_parameters())
    assert "x_logvar" in params and params["x_logvar"].requires_grad
    assert "x_logvar" not in dict(model.named_buffers())
    assert model.x_logvar.shape == (64,)
    torch.testing.assert_close(model.x_logvar.detach(), torch.full((64,), 2 * math.log(0.3)))
    assert model.likelihood == "gaussian"
    # the mean image is the clamped mean, not a sigmoid
    r = torch.tensor([-0.5, 0.3, 1.7]).reshape(1, 1, 1, 3)
    torch.testing.assert_close(model.mean_image(r), torch.tensor([0.0, 0.3, 1.0]).reshape(1, 1, 1, 3))


def test_gaussian_fixed_variance_is_a_buffer() -> None:
    cfg = ModelConfig(
        input_shape=(2, 4, 4),
        latent_dim=2,
        hidden_dim=8,
        likelihood="gaussian",
        gaussian_variance="fixed",
        gaussian_std=0.2,
    )
    model = build_model(cfg)
    assert "x_logvar" not in dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    assert "x_logvar" in buffers and not buffers["x_logvar"].requires_grad
    torch.testing.assert_close(buffers["x_logvar"], torch.full((32,), 2 * math.log(0.2)))
    assert "x_logvar" in model.state_dict()


# --------------------------------------------------------------------------------------------
# Soft labels (a conditional decoder's class mixtures)
# --------------------------------------------------------------------------------------------


def test_soft_labels_equal_hard_ones_at_the_corners_and_are_validated() -> None:
    import torch.nn.functional as F

    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, conditional=True, num_classes=3)
    model = build_model(cfg, seed=0)
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 1])
    hard = model.decode(z, y)
    soft = model.decode(z, F.one_hot(y, 3).float())
    assert torch.allclose(hard, soft)
    half = model.decode(z, torch.full((4, 3), 1 / 3))
    assert not torch.allclose(half, hard)
    with pytest.raises(ValueError, match="soft labels"):
        model.decode(z, torch.ones(4, 5))
    with pytest.raises(ValueError, match="soft labels"):
        model.decode(z, torch.full((4, 3), float("nan")))
