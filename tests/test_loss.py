"""The objective: likelihoods, free bits, β, and the ELBO / IWAE estimates checked against the
exact log-likelihood of a linear-Gaussian model. (The KL and the reparameterization are the
posterior's: test_distributions.py.)"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal, Normal

from vae_explorer import distributions, loss
from vae_explorer.distributions import DiagonalGaussian

# ---------------------------------------------------------------------------------------------
# 3. A linear-Gaussian model with a tractable log p(x)
# ---------------------------------------------------------------------------------------------

SHAPE = (1, 2, 3)  # C, H, W: 6 pixels
N_PIX = 6
D = 2
SIGMA = 0.5
SCALES = torch.tensor([1.5, 0.8], dtype=torch.float64)


class LinearGaussian(torch.nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ² I) with W = Q diag(s), Q orthonormal, so that the
    exact posterior N(Σ Wᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹ = diag(1 / (1 + s²/σ²)), is diagonal.
    ``mu_scale``, ``mu_shift`` and ``logvar_shift`` turn the encoder into a deliberately poor one."""

    likelihood = "gaussian"

    def __init__(
        self, seed: int = 0, mu_scale: float = 1.0, mu_shift: float = 0.0, logvar_shift: float = 0.0
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn((N_PIX, D), generator=g, dtype=torch.float64))
        self.W = q * SCALES  # (N_PIX, D), orthogonal columns of norms SCALES
        self.b = torch.randn(N_PIX, generator=g, dtype=torch.float64)
        self.x_logvar = torch.full((N_PIX,), 2 * math.log(SIGMA), dtype=torch.float64)
        self.post_var = 1.0 / (1.0 + SCALES**2 / SIGMA**2)  # (D,)
        self.mu_scale, self.mu_shift, self.logvar_shift = mu_scale, mu_shift, logvar_shift

    def exact_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.reshape(x.shape[0], -1)
        mean = self.post_var * ((flat - self.b) @ self.W) / SIGMA**2
        return mean, self.post_var.log().expand_as(mean)

    def encode(self, x, y=None):
        mean, logvar = self.exact_posterior(x)
        return DiagonalGaussian(self.mu_scale * mean + self.mu_shift, logvar + self.logvar_shift)

    def log_importance_weights(self, x, y, k, generator=None):
        q = self.encode(x)
        return loss.one_level_log_weights(x, y, q, self.decode, self.likelihood, self.x_logvar, k, generator)

    def decode(self, z, y=None):
        return (z @ self.W.T + self.b).reshape(z.shape[0], *SHAPE)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + SIGMA**2 * torch.eye(N_PIX, dtype=torch.float64)
        return MultivariateNormal(self.b, cov).log_prob(x.reshape(x.shape[0], -1))

    def elbo_closed_form(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[log p(x|z)] − KL(q || p) in closed form for the diagonal Gaussian q of ``encode``."""
        q = self.encode(x)
        m, lv = q.mean, q.logvar
        flat = x.reshape(x.shape[0], -1)
        resid = ((flat - self.b - m @ self.W.T) ** 2).sum(dim=1)
        trace = (lv.exp() * SCALES**2).sum(dim=1)  # tr(W S Wᵀ) = Σ_j (WᵀW)_jj S_jj
        exp_loglik = -0.5 * (N_PIX * (loss.LOG_2PI + 2 * math.log(SIGMA)) + (resid + trace) / SIGMA**2)
        return exp_loglik - loss.kl_per_dim(m, lv).sum(dim=1)


def _data(model: LinearGaussian, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((n, D), generator=g, dtype=torch.float64)
    eps = torch.randn((n, N_PIX), generator=g, dtype=torch.float64)
    return model.decode(z) + SIGMA * eps.reshape(n, *SHAPE)


def _mc_neg_elbo(model: LinearGaussian, x: torch.Tensor, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of recon_nll + KL over n reparameterized samples, one image."""
    _q = model.encode(x)
    mu, lv = _q.mean, _q.logvar
    z = DiagonalGaussian(mu.expand(n, D), lv.expand(n, D)).sample(torch.Generator().manual_seed(seed))
    rec = loss.recon_nll(x.expand(n, *SHAPE), model.decode(z), "gaussian", model.x_logvar)
    neg = rec + loss.kl_per_dim(mu, lv).sum()
    return neg.mean().item(), neg.std().item() / math.sqrt(n)


def test_linear_gaussian_setup_is_the_exact_posterior() -> None:
    """Sanity of the test model itself: the posterior formula matches Bayes' rule computed densely."""
    model = LinearGaussian(seed=0)
    x = _data(model, 3, seed=1)
    mean, lv = model.exact_posterior(x)
    prec = torch.eye(D, dtype=torch.float64) + model.W.T @ model.W / SIGMA**2
    cov = torch.linalg.inv(prec)
    torch.testing.assert_close(torch.diag(lv[0].exp()), cov, atol=1e-12, rtol=0)
    dense_mean = (x.reshape(3, -1) - model.b) @ model.W @ cov.T / SIGMA**2
    torch.testing.assert_close(mean, dense_mean)
    # With the exact posterior the ELBO is tight: closed-form ELBO = log p(x).
    torch.testing.assert_close(model.elbo_closed_form(x), model.log_px(x), atol=1e-10, rtol=0)


def test_exact_posterior_mc_elbo_equals_log_px() -> None:
    model = LinearGaussian(seed=0)
    x_all = _data(model, 3, seed=1)
    log_px = model.log_px(x_all)
    for i in range(3):
        x = x_all[i : i + 1]
        neg_elbo, se = _mc_neg_elbo(model, x, 100_000, seed=10 + i)
        assert abs(-neg_elbo - log_px[i].item()) < 5 * se, (neg_elbo, log_px[i].item(), se)


@pytest.mark.parametrize("k", [1, 7, 100, 1000])
def test_exact_posterior_iwae_is_exact(k: int) -> None:
    """log w = log p(x, z) − log q(z|x) = log p(x) for every z: the estimate has no variance."""
    model = LinearGaussian(seed=0)
    x = _data(model, 4, seed=1)
    est = loss.iwae_nll(model, x, k=k, generator=torch.Generator().manual_seed(k))
    assert est.shape == (4,)
    torch.testing.assert_close(est, -model.log_px(x), atol=1e-9, rtol=0)


def test_poor_encoder_elbo_is_a_lower_bound_with_the_right_gap() -> None:
    model = LinearGaussian(seed=0, mu_scale=0.5, mu_shift=0.4, logvar_shift=1.0)
    x_all = _data(model, 3, seed=1)
    log_px = model.log_px(x_all)
    elbo = model.elbo_closed_form(x_all)
    # gap = KL(q(z|x) || p(z|x)), a KL between two diagonal Gaussians
    _q = model.encode(x_all)
    m_q, lv_q = _q.mean, _q.logvar
    m_p, lv_p = model.exact_posterior(x_all)
    kl_q_post = 0.5 * (lv_p - lv_q + (lv_q.exp() + (m_q - m_p) ** 2) / lv_p.exp() - 1).sum(dim=1)
    torch.testing.assert_close(log_px - elbo, kl_q_post, atol=1e-10, rtol=0)
    assert (kl_q_post > 0.5).all()  # the encoder is clearly poor
    for i in range(3):
        x = x_all[i : i + 1]
        neg_elbo, se = _mc_neg_elbo(model, x, 100_000, seed=20 + i)
        assert abs(neg_elbo + elbo[i].item()) < 5 * se  # MC agrees with the closed form
        assert neg_elbo > -log_px[i].item() + 10 * se  # and is an upper bound on -log p(x)


def test_poor_encoder_iwae_tightens_with_k() -> None:
    model = LinearGaussian(seed=0, mu_scale=1.0, mu_shift=0.6)  # posterior mean shifted by 0.6
    x = _data(model, 1, seed=1)
    nll = -model.log_px(x).item()
    neg_elbo = -model.elbo_closed_form(x).item()
    ks = (1, 10, 100, 1000)
    repeats = (2000, 2000, 1000, 200)  # rows of x_rep each get their own K samples: independent
    means, ses = {}, {}
    for k, r in zip(ks, repeats, strict=True):
        x_rep = x.expand(r, *SHAPE)
        est = loss.iwae_nll(model, x_rep, k=k, generator=torch.Generator().manual_seed(100 + k))
        means[k], ses[k] = est.mean().item(), est.std().item() / math.sqrt(r)
    # K = 1 is the negative ELBO in expectation
    assert abs(means[1] - neg_elbo) < 5 * ses[1], (means[1], neg_elbo, ses[1])
    # monotone decrease, each step clearly beyond noise, never (significantly) below -log p(x)
    for a, b in itertools.pairwise(ks):
        assert means[a] - means[b] > 3 * math.hypot(ses[a], ses[b]), (a, b, means, ses)
    for k in ks:
        assert means[k] > nll - 5 * ses[k]
    assert means[1] - nll > 1.0  # the bound is loose at K = 1 ...
    assert means[1000] - nll < 0.05 * (means[1] - nll), (means, nll)  # ... and nearly tight at 1000


def test_iwae_rejects_k_zero() -> None:
    model = LinearGaussian(seed=0)
    with pytest.raises(ValueError, match=r"the number of importance samples must be at least 1, got 0"):
        loss.iwae_nll(model, _data(model, 1, seed=1), k=0)


def test_iwae_of_a_vae_is_seeded_and_batch_consistent(tiny_config) -> None:
    """On a real VAE (Bernoulli): same generator seed → same value; each image's estimate is
    computed from its own samples (batching does not mix images)."""
    from vae_explorer.build import build_model

    model = build_model(tiny_config, seed=0).eval()
    x = torch.rand((3, *tiny_config.input_shape), generator=torch.Generator().manual_seed(0))
    a = loss.iwae_nll(model, x, k=50, generator=torch.Generator().manual_seed(1))
    b = loss.iwae_nll(model, x, k=50, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    # With k = 1, the estimate is exactly recon + log q − log p at the one sample drawn.
    g = torch.Generator().manual_seed(2)
    est = loss.iwae_nll(model, x, k=1, generator=g)
    g = torch.Generator().manual_seed(2)
    _q = model.encode(x)
    mu, lv = _q.mean, _q.logvar
    eps = torch.randn((1, 3, tiny_config.latent_dim), generator=g)[0]
    z = mu + torch.exp(0.5 * lv) * eps
    with torch.no_grad():
        ref = (
            loss.recon_nll(x, model.decode(z), "bernoulli")
            + distributions.log_normal(z, mu, lv)
            - distributions.log_standard_normal(z)
        )
    torch.testing.assert_close(est, ref, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# 4. recon_nll
# ---------------------------------------------------------------------------------------------


def test_bernoulli_nll_matches_hand_written_formula_with_grayscale_targets() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn((4, 1, 3, 3), generator=g, dtype=torch.float64)
    x = torch.rand((4, 1, 3, 3), generator=g, dtype=torch.float64)  # grayscale in [0, 1]
    x[0] = (x[0] > 0.5).double()  # and one binary image
    p = torch.sigmoid(logits)
    ref = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).reshape(4, -1).sum(dim=1)
    out = loss.recon_nll(x, logits, "bernoulli")
    assert out.shape == (4,)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_bernoulli_nll_is_stable_for_extreme_logits() -> None:
    logits = torch.tensor([100.0, -100.0, 100.0, -100.0, 100.0, -100.0]).reshape(6, 1, 1, 1)
    x = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5]).reshape(6, 1, 1, 1)
    out = loss.recon_nll(x, logits, "bernoulli")
    assert torch.isfinite(out).all()
    # exact values: softplus(l) − x·l
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 100.0, 100.0, 50.0, 50.0]), atol=1e-6, rtol=0)
    # and the gradient is finite too
    lg = logits.clone().requires_grad_()
    loss.recon_nll(x, lg, "bernoulli").sum().backward()
    assert torch.isfinite(lg.grad).all()


def test_gaussian_nll_matches_torch_normal() -> None:
    g = torch.Generator().manual_seed(1)
    shape = (3, 2, 2, 2)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    mean = torch.rand(shape, generator=g, dtype=torch.float64)
    x_logvar = torch.randn(8, generator=g, dtype=torch.float64)  # one per pixel, (C·H·W,)
    std = torch.exp(0.5 * x_logvar).reshape(1, 2, 2, 2)
    ref = -Normal(mean, std).log_prob(x).reshape(3, -1).sum(dim=1)
    torch.testing.assert_close(loss.recon_nll(x, mean, "gaussian", x_logvar), ref, rtol=1e-10, atol=1e-10)


def test_recon_nll_errors() -> None:
    x = torch.zeros((1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"unknown likelihood 'poisson'"):
        loss.recon_nll(x, x, "poisson")
    with pytest.raises(ValueError, match=r"the Gaussian likelihood needs the decoder's log-variance"):
        loss.recon_nll(x, x, "gaussian", None)


# ---------------------------------------------------------------------------------------------
# 5. Free bits and β
# ---------------------------------------------------------------------------------------------


def test_free_bits_hand_made_example() -> None:
    kl = torch.tensor([[0.1, 2.0, 0.0, 1.0], [0.3, 4.0, 0.2, 0.0]])  # batch means 0.2, 3, 0.1, 0.5
    assert loss.free_bits_kl(kl, 0.5).item() == pytest.approx(0.5 + 3.0 + 0.5 + 0.5)
    assert loss.free_bits_kl(kl, 0.15).item() == pytest.approx(0.2 + 3.0 + 0.15 + 0.5)
    assert loss.free_bits_kl(kl, 0.0).item() == pytest.approx(0.2 + 3.0 + 0.1 + 0.5)


def test_free_bits_gradient_only_for_dims_above_lambda() -> None:
    # per-dimension batch-mean KLs of about 0.005, 0.5, 0.02, 2.0 with λ = 0.1
    mu = torch.tensor([[0.1, 1.0, 0.2, 2.0], [-0.1, -1.0, 0.2, -2.0]], requires_grad=True)
    lv = torch.zeros((2, 4), requires_grad=True)
    kl_dims = loss.kl_per_dim(mu, lv)
    means = kl_dims.mean(dim=0).detach()
    assert (means[[0, 2]] < 0.1).all() and (means[[1, 3]] > 0.1).all()
    loss.free_bits_kl(kl_dims, 0.1).backward()
    assert torch.equal(mu.grad[:, [0, 2]], torch.zeros(2, 2))
    assert (mu.grad[:, [1, 3]].abs() > 0).all()
    # without free bits every dimension gets a gradient
    mu.grad = None
    loss.free_bits_kl(loss.kl_per_dim(mu, lv), 0.0).backward()
    assert (mu.grad.abs() > 0).all()


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((4, 1, 3, 3), generator=g) > 0.5).float()
    recon = torch.randn((4, 1, 3, 3), generator=g)
    mu = torch.tensor([[0.05, 1.5], [-0.05, -1.0], [0.05, 0.5], [-0.05, 2.0]])
    lv = torch.zeros((4, 2))
    return x, recon, mu, lv


def test_vae_loss_reports_true_kl_under_free_bits() -> None:
    x, recon, mu, lv = _batch()
    kl_dims = loss.kl_per_dim(mu, lv)
    true_kl = kl_dims.sum(dim=1).mean()
    rec = loss.recon_nll(x, recon, "bernoulli").mean()
    lam = 0.5  # dim 0 has mean KL 0.00125 < λ, dim 1 has ≈ 0.94 > λ
    out = loss.vae_loss(x, recon, mu, lv, "bernoulli", beta=1.0, free_bits=lam)
    torch.testing.assert_close(out.kl, true_kl)
    torch.testing.assert_close(out.recon, rec)
    clamped = lam + kl_dims[:, 1].mean()
    torch.testing.assert_close(out.loss, rec + clamped)
    assert out.loss.item() > (rec + true_kl).item() + 0.4  # the clamp really changed the objective
    torch.testing.assert_close(out.kl_per_dim, kl_dims.mean(dim=0))
    assert not out.kl_per_dim.requires_grad


@pytest.mark.parametrize("beta", [0.0, 0.25, 1.0, 4.0])
def test_beta_weights_the_kl_exactly(beta: float) -> None:
    x, recon, mu, lv = _batch(1)
    out = loss.vae_loss(x, recon, mu, lv, "bernoulli", beta=beta)
    assert out.beta == beta
    torch.testing.assert_close(out.loss, out.recon + beta * out.kl)
    torch.testing.assert_close(out.recon, loss.recon_nll(x, recon, "bernoulli").mean())
    torch.testing.assert_close(out.kl, loss.kl_per_dim(mu, lv).sum(dim=1).mean())


def test_vae_loss_gaussian_uses_x_logvar() -> None:
    x, recon, mu, lv = _batch(2)
    a = loss.vae_loss(x, recon, mu, lv, "gaussian", x_logvar=torch.zeros(9))
    b = loss.vae_loss(x, recon, mu, lv, "gaussian", x_logvar=torch.full((9,), -2.0))
    ref = 0.5 * (loss.LOG_2PI + (x - recon) ** 2).reshape(4, -1).sum(dim=1).mean()
    torch.testing.assert_close(a.recon, ref)
    assert not torch.allclose(a.recon, b.recon)


def test_bernoulli_nll_differs_from_torch_bce_only_by_reduction() -> None:
    """Cross-check against torch's own mean-reduced BCE."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand((2, 1, 4, 4), generator=g)
    logits = torch.randn((2, 1, 4, 4), generator=g)
    total = loss.recon_nll(x, logits, "bernoulli").sum()
    torch.testing.assert_close(total / x.numel(), F.binary_cross_entropy_with_logits(logits, x))
