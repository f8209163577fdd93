"""What a forward pass returns (vae_explorer/outputs.py): VAEOutput's top posterior and sample,
its stochastic levels (one by default, none for an autoencoder, bottom first for a hierarchical
model), and the mu / logvar views of the top posterior."""

from __future__ import annotations

import torch

from vae_explorer import model as model_mod
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.distributions import DiagonalGaussian
from vae_explorer.outputs import LatentLevel, VAEOutput


def _q(n: int = 3, d: int = 2, seed: int = 0) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn((n, d), generator=g), torch.randn((n, d), generator=g))


def test_without_levels_the_output_has_its_one_level_with_the_prior_n01():
    q = _q()
    z = q.sample(torch.Generator().manual_seed(1))
    out = VAEOutput(torch.zeros((3, 1, 2, 2)), q, z)
    assert len(out.levels) == 1
    (level,) = out.levels
    assert isinstance(level, LatentLevel) and level.z is z and level.q is q and level.p is None
    assert out.mu is q.mean and out.logvar is q.logvar


def test_an_autoencoders_empty_levels_and_given_levels_are_kept():
    q = _q()
    assert VAEOutput(torch.zeros((3, 1, 2, 2)), q, q.mean, levels=[]).levels == []  # no KL term to pay
    bottom = LatentLevel(torch.zeros(3, 4), _q(d=4, seed=2), p=_q(d=4, seed=3))
    top = LatentLevel(torch.zeros(3, 2), q)
    out = VAEOutput(torch.zeros((3, 1, 2, 2)), q, top.z, levels=[bottom, top])
    assert out.levels == [bottom, top] and out.levels[0].p is bottom.p


def test_the_models_outputs_are_these_types():
    assert model_mod.VAEOutput is VAEOutput and model_mod.LatentLevel is LatentLevel  # re-exported
    x = torch.rand((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    vae = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16), seed=0)
    out = vae(x, None, torch.Generator().manual_seed(1))
    assert isinstance(out, VAEOutput) and out.levels[0].z is out.z and out.mu.shape == (4, 2)
    deep = ModelConfig(
        input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=3, hidden_dim=16
    )
    out = build_model(deep, seed=0)(x, None, torch.Generator().manual_seed(1))
    # Bottom (nearest x) first; the top level, the one with the N(0, I) prior, is the output's z and q.
    assert [lv.z.shape[1] for lv in out.levels] == [3, 2]
    assert out.levels[-1].z is out.z and out.levels[-1].p is None and out.levels[0].p is not None
    assert torch.equal(out.logvar, out.levels[-1].q.logvar)
