"""The two-level hierarchical VAE: its per-level KLs, its bound against the exact likelihood of
a tiny model (computed by quadrature over both latents), and training it end to end."""

from __future__ import annotations

import math

import pytest
import torch

from vae_explorer import distributions, loss
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.diagnostics import COLLAPSE_KL, training_findings
from vae_explorer.generate import reconstruct, sample_prior
from vae_explorer.hierarchical import HierarchicalVAE
from vae_explorer.records import EpochRecord, StepRecord
from vae_explorer.trainer import Trainer

SHAPE = (1, 2, 2)  # four pixels: small enough to integrate p(x) exactly


def _tiny(seed: int = 0) -> HierarchicalVAE:
    """1-D z₂, 1-D z₁, a Gaussian likelihood: p(x) = ∫∫ p(x|z₁) p(z₁|z₂) p(z₂) dz₁ dz₂ is a 2-D
    integral we can do on a grid. float64 so the quadrature is the only approximation."""
    cfg = ModelConfig(
        input_shape=SHAPE,
        arch="hierarchical",
        latent_dim=1,
        bottom_latent_dim=1,
        hidden_dim=8,
        likelihood="gaussian",
        gaussian_std=0.5,
    )
    model = build_model(cfg, seed=seed).double().eval()
    with torch.no_grad():  # spread the prior p(z₁|z₂) so that z₂ matters
        model.p_bottom[2].weight.mul_(3.0)
    return model


@torch.no_grad()
def _exact_log_px(model: HierarchicalVAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) by the trapezoid-free Riemann sum on a fine grid (the integrand is smooth and
    negligible at the edges, so the sum converges fast). x (B, 1, 2, 2) → (B,)."""
    g = torch.linspace(-9.0, 9.0, 1201, dtype=torch.float64)  # (G,)
    dz = float(g[1] - g[0])
    z = g[:, None]  # (G, 1)
    prior = model.prior_bottom(z, None)  # p(z₁ | z₂ = g_j): (G, 1)
    pm, plv = prior.mean, prior.logvar
    # log p(z₁ = g_i | z₂ = g_j) + log p(z₂ = g_j): (G_i, G_j)
    log_joint_z = (
        distributions.log_normal(g[:, None, None], pm[None], plv[None])
        + distributions.log_standard_normal(z)[None]
    )
    means = model._decode_bottom(z, None)  # (G, 1, 2, 2): p(x | z₁ = g_i)
    out = []
    for xb in x:
        log_px_z1 = -loss.recon_nll(xb.expand(len(g), *SHAPE), means, "gaussian", model.x_logvar)  # (G,)
        out.append(torch.logsumexp((log_px_z1[:, None] + log_joint_z).reshape(-1), 0) + 2 * math.log(dz))
    return torch.stack(out)


def _data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *SHAPE), generator=g, dtype=torch.float64)


def test_quadrature_integrates_the_model_to_one():
    """Sanity of the reference itself: a 1-pixel-wide slice is hard, but p(z₁, z₂) on the grid
    must sum to 1 (the grid covers all the prior mass)."""
    model = _tiny()
    g = torch.linspace(-9.0, 9.0, 1201, dtype=torch.float64)
    prior = model.prior_bottom(g[:, None], None)
    pm, plv = prior.mean, prior.logvar
    log_joint = (
        distributions.log_normal(g[:, None, None], pm[None], plv[None])
        + distributions.log_standard_normal(g[:, None])[None]
    )
    total = torch.logsumexp(log_joint.reshape(-1), 0).exp() * float(g[1] - g[0]) ** 2
    assert abs(total.item() - 1.0) < 1e-6


def test_iwae_converges_to_the_exact_log_likelihood_and_the_elbo_bounds_it():
    model = _tiny()
    x = _data(3, seed=1)
    exact = _exact_log_px(model, x)  # (3,)
    # K = 1 (the ELBO) is clearly loose for a random encoder; large K closes in on log p(x).
    reps = 400
    x_rep = x.repeat_interleave(reps, dim=0)
    k1 = loss.iwae_nll(model, x_rep, k=1, generator=torch.Generator().manual_seed(1)).reshape(3, reps)
    k_big = loss.iwae_nll(model, x, k=50_000, generator=torch.Generator().manual_seed(2), chunk=5000)
    for i in range(3):
        neg_elbo, se = k1[i].mean().item(), k1[i].std().item() / math.sqrt(reps)
        assert neg_elbo > -exact[i].item() + 0.3, (neg_elbo, -exact[i].item())
        assert neg_elbo - 5 * se > -exact[i].item()
    torch.testing.assert_close(k_big, -exact, atol=0.03, rtol=0)


def test_closed_form_level_kls_agree_with_the_sampled_log_weights():
    """The trained objective (closed-form KLs per level) and the importance weight at the same
    samples have the same expectation: recon + KL₁ + KL₂ = E[−log w]. A wrong level-1 KL (e.g.
    against N(0, I) instead of p(z₁|z₂)) would move the mean by far more than the error bar."""
    model = _tiny(seed=3)
    x = _data(1, seed=4).expand(200_000, *SHAPE)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        out = model(x, None, gen)
        closed = loss.recon_nll(x, out.recon, "gaussian", model.x_logvar)
        for level in out.levels:
            closed = closed + level.q.kl(level.p).sum(1)
        neg_log_w = loss.iwae_nll(model, x, k=1, generator=torch.Generator().manual_seed(6))
        wrong = (
            closed
            - loss.kl_normal(
                out.levels[0].q.mean, out.levels[0].q.logvar, out.levels[0].p.mean, out.levels[0].p.logvar
            ).sum(1)
            + loss.kl_per_dim(out.levels[0].q.mean, out.levels[0].q.logvar).sum(1)
        )
    se = math.hypot(closed.std().item(), neg_log_w.std().item()) / math.sqrt(len(x))
    assert abs(closed.mean().item() - neg_log_w.mean().item()) < 5 * se
    assert abs(wrong.mean().item() - neg_log_w.mean().item()) > 20 * se


def test_elbo_loss_sums_the_levels_and_applies_free_bits_to_each():
    model = build_model(
        ModelConfig(
            input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=3, hidden_dim=16
        )
    )
    x = torch.rand((16, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    out = model(x, None, torch.Generator().manual_seed(1))
    terms = loss.elbo_loss(x, out, "bernoulli", beta=2.0)
    assert len(terms.kl_levels) == 2
    torch.testing.assert_close(terms.kl, terms.kl_levels[0] + terms.kl_levels[1])
    torch.testing.assert_close(terms.loss, terms.recon + 2.0 * terms.kl)
    assert terms.kl_per_dim.shape == (2,)  # the top level's dimensions
    fb = loss.elbo_loss(x, out, "bernoulli", beta=1.0, free_bits=5.0)  # above every dimension's KL
    torch.testing.assert_close(fb.loss, fb.recon + 5.0 * (2 + 3))
    torch.testing.assert_close(fb.kl, terms.kl)  # the reported KL is the true one


def test_forward_is_seeded_and_decode_goes_through_the_prior_mean():
    model = build_model(
        ModelConfig(
            input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=3, hidden_dim=16
        )
    ).eval()
    x = torch.rand((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    a = model(x, None, torch.Generator().manual_seed(1))
    b = model(x, None, torch.Generator().manual_seed(1))
    assert torch.equal(a.recon, b.recon) and [lv.z.shape[1] for lv in a.levels] == [3, 2]
    assert torch.equal(a.z, a.levels[-1].z) and a.levels[-1].p is None
    z2 = torch.randn((5, 2), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pm = model.prior_bottom(z2, None).mean
        torch.testing.assert_close(model.decode(z2), model.decoder(pm).reshape(5, 1, 8, 8))
    imgs = sample_prior(model, n=6, seed=3)
    assert imgs.shape == (6, 1, 8, 8) and torch.equal(imgs, sample_prior(model, n=6, seed=3))
    rec = reconstruct(model, x)
    assert rec.shape == x.shape and ((rec >= 0) & (rec <= 1)).all()


@pytest.mark.parametrize("conditional", [False, True])
def test_training_lowers_the_loss_and_reports_each_level(conditional):
    digits = load_dataset("digits")
    cfg = ModelConfig(
        input_shape=(1, 8, 8),
        arch="hierarchical",
        latent_dim=2,
        bottom_latent_dim=4,
        hidden_dim=64,
        conditional=conditional,
    )
    # Free bits keep the top level in use; without them it collapses (the next test).
    t = Trainer(build_model(cfg, seed=0), digits, TrainConfig(epochs=8, batch_size=64, free_bits=0.5))
    records = list(t.run())
    steps = [r for r in records if isinstance(r, StepRecord)]
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    assert all(len(s.kl_levels) == 2 and math.isclose(sum(s.kl_levels), s.kl, rel_tol=1e-5) for s in steps)
    assert all(math.isclose(sum(e.test_kl_levels), e.test_kl, rel_tol=1e-5) for e in epochs)
    assert epochs[-1].test_loss < epochs[0].test_loss - 3.0
    assert all(v > 0.5 for v in epochs[-1].test_kl_levels), epochs[-1].test_kl_levels  # both in use
    assert len(epochs[-1].kl_per_dim) == 2


def test_without_free_bits_the_top_level_collapses_and_the_diagnosis_says_so():
    """The classic failure of hierarchical VAEs (Sønderby et al. 2016): q(z₁|x, z₂) can carry
    everything, so KL(q(z₂|x) ‖ p(z₂)) is cheaper at 0 and the top level goes unused."""
    digits = load_dataset("digits")
    cfg = ModelConfig(
        input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=4, hidden_dim=64
    )
    t = Trainer(build_model(cfg, seed=0), digits, TrainConfig(epochs=8, batch_size=64))
    last = [r for r in t.run() if isinstance(r, EpochRecord)][-1]
    bottom, top = last.test_kl_levels
    assert top < COLLAPSE_KL < bottom, last.test_kl_levels
    assert not last.collapsed  # z₁ still carries information: not a posterior collapse
    text = " ".join(training_findings(t.history))
    assert "top level" in text and "free bits" in text
