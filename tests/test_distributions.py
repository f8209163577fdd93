"""The Gaussian posterior (distributions.py): the closed-form KLs (to N(0, I) and between two
diagonal Gaussians) against Monte Carlo and torch.distributions, the log-density against
torch.distributions, the reparameterization z = μ + σ ⊙ ε (its seeding and its gradients,
checked by finite differences), and the autoencoder's point."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vae_explorer import distributions, loss
from vae_explorer.distributions import DiagonalGaussian

# ---------------------------------------------------------------------------------------------
# 1. KL(N(mu, σ²) || N(0, 1)) in closed form
# ---------------------------------------------------------------------------------------------

KL_CASES = [(0.0, 0.0), (1.5, 0.0), (0.0, 1.3), (-0.7, 1.2), (2.0, -2.5), (0.3, -4.0)]


@pytest.mark.parametrize(("mu", "logvar"), KL_CASES)
def test_kl_closed_form_matches_monte_carlo(mu: float, logvar: float) -> None:
    n = 200_000
    g = torch.Generator().manual_seed(1234)
    mu_t = torch.tensor([[mu]], dtype=torch.float64)
    lv_t = torch.tensor([[logvar]], dtype=torch.float64)
    z = mu_t + torch.exp(0.5 * lv_t) * torch.randn((n, 1), generator=g, dtype=torch.float64)
    log_ratio = distributions.log_normal(z, mu_t, lv_t) - distributions.log_standard_normal(z)  # (n,)
    mc, se = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(n)
    closed = distributions.kl_per_dim(mu_t, lv_t).item()
    assert abs(mc - closed) < 5 * se + 1e-12, (mc, closed, se)
    # and the closed form is the textbook formula
    assert closed == pytest.approx(0.5 * (mu**2 + math.exp(logvar) - 1 - logvar), rel=1e-12, abs=1e-15)


def test_kl_monte_carlo_detects_a_wrong_formula() -> None:
    """Guard for the test above: the MC tolerance is tight enough to reject a KL missing the ½."""
    n = 200_000
    g = torch.Generator().manual_seed(99)
    mu_t = torch.tensor([[-0.7]], dtype=torch.float64)
    lv_t = torch.tensor([[1.2]], dtype=torch.float64)
    z = mu_t + torch.exp(0.5 * lv_t) * torch.randn((n, 1), generator=g, dtype=torch.float64)
    log_ratio = distributions.log_normal(z, mu_t, lv_t) - distributions.log_standard_normal(z)
    se = log_ratio.std().item() / math.sqrt(n)
    wrong = 2 * distributions.kl_per_dim(mu_t, lv_t).item()
    assert abs(log_ratio.mean().item() - wrong) > 20 * se


def test_kl_per_dim_shape_and_multivariate_sum() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn((5, 4), generator=g, dtype=torch.float64)
    lv = torch.randn((5, 4), generator=g, dtype=torch.float64)
    kl = distributions.kl_per_dim(mu, lv)
    assert kl.shape == (5, 4)
    # The sum over dimensions is the KL of the diagonal multivariate Gaussian.
    for i in range(5):
        q = MultivariateNormal(mu[i], torch.diag(lv[i].exp()))
        p = MultivariateNormal(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64))
        assert kl[i].sum().item() == pytest.approx(torch.distributions.kl_divergence(q, p).item(), rel=1e-10)


def test_kl_zero_exactly_at_prior_and_nonnegative() -> None:
    assert torch.equal(distributions.kl_per_dim(torch.zeros(3, 7), torch.zeros(3, 7)), torch.zeros(3, 7))
    g = torch.Generator().manual_seed(3)
    mu = 3 * torch.randn((1000, 8), generator=g, dtype=torch.float64)
    lv = torch.empty((1000, 8), dtype=torch.float64).uniform_(-12, 12, generator=g)
    assert (distributions.kl_per_dim(mu, lv) >= 0).all()
    # float32 with generic (not near-zero) log-variances
    assert (distributions.kl_per_dim(mu.float(), lv.float()) >= 0).all()


def test_kl_nonnegative_in_float32_near_the_prior() -> None:
    lv = torch.tensor([1e-8, 1e-5, -1e-5, 3e-4, -3e-4, 1e-3])
    assert (distributions.kl_per_dim(torch.zeros_like(lv), lv) >= 0).all()


def test_kl_normal_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, lv, pm, plv = (torch.randn((50, 3), generator=g, dtype=torch.float64) * 2 for _ in range(4))
    ref = kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(pm, (0.5 * plv).exp()))
    torch.testing.assert_close(loss.kl_normal(mu, lv, pm, plv), ref)
    torch.testing.assert_close(loss.kl_normal(mu, lv), loss.kl_per_dim(mu, lv))
    # Zero exactly when q = p, also in float32 (expm1 form), and never negative.
    assert torch.equal(loss.kl_normal(pm.float(), plv.float(), pm.float(), plv.float()), torch.zeros(50, 3))
    assert (loss.kl_normal(mu.float(), lv.float(), pm.float(), plv.float()) >= 0).all()


# ---------------------------------------------------------------------------------------------
# 2. Reparameterized gradients
# ---------------------------------------------------------------------------------------------


def _f_of_z(mu: torch.Tensor, logvar: torch.Tensor, seed: int) -> torch.Tensor:
    z = DiagonalGaussian(mu, logvar).sample(torch.Generator().manual_seed(seed))
    return (torch.sin(z) * torch.arange(1, z.numel() + 1, dtype=z.dtype).reshape(z.shape)).sum() + (
        z**2
    ).sum()


def test_reparameterize_gradients_match_finite_differences() -> None:
    g = torch.Generator().manual_seed(7)
    mu = torch.randn((2, 3), generator=g, dtype=torch.float64).requires_grad_()
    lv = (0.5 * torch.randn((2, 3), generator=g, dtype=torch.float64)).requires_grad_()
    _f_of_z(mu, lv, seed=11).backward()
    assert mu.grad is not None and lv.grad is not None
    assert (mu.grad.abs() > 1e-6).all() and (lv.grad.abs() > 1e-6).all()

    h = 1e-6
    for param, grad in ((mu, mu.grad), (lv, lv.grad)):
        fd = torch.zeros_like(param)
        for idx in range(param.numel()):
            with torch.no_grad():
                base = param.detach().clone()
                up, down = base.clone(), base.clone()
                up.view(-1)[idx] += h
                down.view(-1)[idx] -= h
                if param is mu:
                    f_up, f_down = _f_of_z(up, lv.detach(), 11), _f_of_z(down, lv.detach(), 11)
                else:
                    f_up, f_down = _f_of_z(mu.detach(), up, 11), _f_of_z(mu.detach(), down, 11)
            fd.view(-1)[idx] = (f_up - f_down) / (2 * h)
        torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-7)


def test_reparameterize_is_mu_plus_sigma_eps_with_the_generator() -> None:
    mu = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    lv = torch.tensor([[0.0, 2.0, -3.0]], dtype=torch.float64)
    z1 = DiagonalGaussian(mu, lv).sample(torch.Generator().manual_seed(5))
    z2 = DiagonalGaussian(mu, lv).sample(torch.Generator().manual_seed(5))
    z3 = DiagonalGaussian(mu, lv).sample(torch.Generator().manual_seed(6))
    eps = torch.randn((1, 3), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(z1, z2) and not torch.equal(z1, z3)
    torch.testing.assert_close(z1, mu + torch.exp(0.5 * lv) * eps)


# ---------------------------------------------------------------------------------------------
# 3. The posterior object
# ---------------------------------------------------------------------------------------------


def _q(seed: int = 0, shape=(4, 3)) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(shape, generator=g, dtype=torch.float64),
                            torch.randn(shape, generator=g, dtype=torch.float64))  # fmt: skip


def test_kl_to_any_diagonal_prior_is_torch_s_closed_form() -> None:
    q, p = _q(1), _q(2)
    ref = kl_divergence(Normal(q.mean, q.std), Normal(p.mean, p.std))  # (4, 3)
    torch.testing.assert_close(q.kl(p), ref, rtol=1e-10, atol=1e-12)
    std_normal = Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))
    torch.testing.assert_close(q.kl(), kl_divergence(Normal(q.mean, q.std), std_normal))


def test_log_prob_sums_over_d_and_broadcasts_over_samples() -> None:
    q = _q(3)
    z = torch.randn((5, 4, 3), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = Normal(q.mean, q.std).log_prob(z).sum(-1)  # (5, 4)
    torch.testing.assert_close(q.log_prob(z), ref)
    torch.testing.assert_close(distributions.log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_sample_is_seeded_has_n_draws_and_the_posterior_s_moments() -> None:
    q = _q(5, shape=(2, 3))
    a = q.sample(torch.Generator().manual_seed(9), n=200_000)
    b = q.sample(torch.Generator().manual_seed(9), n=200_000)
    assert a.shape == (200_000, 2, 3) and torch.equal(a, b)
    se = q.std / math.sqrt(200_000)
    assert ((a.mean(0) - q.mean).abs() < 5 * se).all()
    torch.testing.assert_close(a.std(0), q.std, rtol=0.01, atol=0)
    # One draw is the reparameterization with the ε the same generator gives.
    eps = torch.randn((2, 3), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    torch.testing.assert_close(q.sample(torch.Generator().manual_seed(9)), q.mean + q.std * eps)


def test_the_gradient_reaches_mu_and_sigma_through_z() -> None:
    """∂z/∂μ = 1 and ∂z/∂(log σ²) = ½ σ ε: the randomness is an input, not a node in the way."""
    mu = torch.tensor([0.3, -1.0], dtype=torch.float64, requires_grad=True)
    lv = torch.tensor([0.5, -2.0], dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([1.5, -0.7], dtype=torch.float64)
    DiagonalGaussian(mu, lv).reparameterize(eps).sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(lv.grad, 0.5 * torch.exp(0.5 * lv.detach()) * eps)


def test_a_point_samples_its_mean_and_has_no_kl_or_density() -> None:
    mean = torch.tensor([[1.0, 2.0]])
    point = DiagonalGaussian(mean, torch.full_like(mean, -10.0), deterministic=True)
    assert torch.equal(point.sample(torch.Generator().manual_seed(0)), mean) and torch.equal(
        point.mode(), mean
    )
    assert torch.equal(point.std, torch.zeros_like(mean))
    with pytest.raises(ValueError, match="no KL"):
        point.kl()
    with pytest.raises(ValueError, match="no density"):
        point.log_prob(mean)


def test_rows_of_a_batch_posterior() -> None:
    q = _q(6, shape=(5, 3))
    assert len(q) == 5 and torch.equal(q[1:3].mean, q.mean[1:3]) and torch.equal(q[4].logvar, q.logvar[4])
