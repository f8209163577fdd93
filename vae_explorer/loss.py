"""The VAE objective as pure functions. All losses are in nats per image.

Negative ELBO (Kingma & Welling 2014, eq. 3, with β of Higgins et al. 2017):

    L(x) = E_q(z|x)[-log p(x|z)]  +  β · KL(q(z|x) || p(z))
           `---- reconstruction ----'     `------ KL term -----'

with q(z|x) = N(mu, diag σ²), p(z) = N(0, I) and the KL in closed form per dimension d:

    KL_d = ½ (mu_d² + σ_d² − 1 − log σ_d²).

The reconstruction term is estimated with one reparameterized sample z = mu + σ ⊙ ε.
A hierarchical model (hierarchical.py) has one KL per level, each against the prior the level
above gives it: ``elbo_loss`` sums them, ``vae_loss`` is its one-level case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from .model import VAEOutput

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class LossTerms:
    """One batch's objective and its parts (means over the batch, nats per image)."""

    loss: torch.Tensor  # () the objective minimised: recon + β · KL (with free bits if on)
    recon: torch.Tensor  # () E_q[-log p(x|z)], one-sample estimate
    kl: torch.Tensor  # () KL(q(z|x) || p(z)), the true value (free bits do not change it)
    kl_per_dim: torch.Tensor  # (D,) batch-mean KL of each dimension of the top latent
    beta: float  # the β this batch was weighted with
    # () true KL of each level, bottom first (one entry for a one-level VAE); detached
    kl_levels: list[torch.Tensor] = field(default_factory=list)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, σ²) || N(0, 1)) for each dimension. (B, D) → (B, D).
    Written with expm1: e^lv − 1 − lv cancels badly in float32 near lv = 0 and could go negative."""
    return 0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar)


def kl_normal(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form KL(N(mu, σ²) || N(m_p, σ_p²)) per dimension, (B, D) → (B, D):

        KL_d = ½ (σ²/σ_p² − 1 − log(σ²/σ_p²) + (mu − m_p)²/σ_p²),

    with r = log σ² − log σ_p² written through expm1 (as in ``kl_per_dim``). A missing prior
    is N(0, I), and then this is exactly ``kl_per_dim``."""
    if prior_mu is None or prior_logvar is None:
        return kl_per_dim(mu, logvar)
    r = logvar - prior_logvar
    return 0.5 * (torch.expm1(r) - r + (mu - prior_mu).pow(2) * torch.exp(-prior_logvar))


def recon_nll(
    x: torch.Tensor, recon: torch.Tensor, likelihood: str, x_logvar: torch.Tensor | None = None
) -> torch.Tensor:
    """-log p(x|z) summed over pixels, (B,).

    bernoulli: ``recon`` are logits; the with-logits form is exact and stable for any logit
    (also for grayscale targets in [0, 1], the pytorch/examples convention).
    gaussian: ``recon`` are means; -log N(x; m, σ²) = ½ (log 2π + log σ² + (x − m)² / σ²).
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(recon, x, reduction="none")
    elif likelihood == "gaussian":
        if x_logvar is None:
            raise ValueError("the Gaussian likelihood needs the decoder's log-variance.")
        lv = x_logvar.reshape(1, *x.shape[1:])  # (1, C, H, W), broadcast over the batch
        nll = 0.5 * (LOG_2PI + lv + (x - recon).pow(2) * torch.exp(-lv))
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}.")
    return nll.reshape(x.shape[0], -1).sum(dim=1)


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016, eq. 15), one group per latent dimension:

        Σ_d max(λ, mean_batch KL_d).

    A dimension whose batch-average KL is below λ nats gets no gradient pushing it lower, so
    the encoder keeps at least λ nats there instead of collapsing. Clamping the batch mean (not
    each image) is the paper's choice: it lets single images use less. (B, D) → ()."""
    per_dim = kl_dims.mean(dim=0)  # (D,)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()


def _recon_mean(
    x: torch.Tensor, recon: torch.Tensor, likelihood: str, x_logvar: torch.Tensor | None
) -> torch.Tensor:
    """Batch mean of -log p(x|z), ()."""
    if likelihood == "bernoulli":
        # Same value as recon_nll(...).mean(); one fused reduction keeps the step as cheap as a
        # hand-written training loop's (no (B, pixels) intermediate to sum and back-propagate).
        return F.binary_cross_entropy_with_logits(recon, x, reduction="sum") / x.shape[0]
    return recon_nll(x, recon, likelihood, x_logvar).mean()


def elbo_loss(
    x: torch.Tensor,
    out: VAEOutput,
    likelihood: str,
    beta: float = 1.0,
    free_bits: float = 0.0,
    x_logvar: torch.Tensor | None = None,
) -> LossTerms:
    """The (β-weighted, optionally free-bits) negative ELBO of a forward pass, nats per image:

        recon + β · Σ_levels KL(q(z_l | x, z_{l+1}) || p(z_l | z_{l+1})),

    each level's KL in closed form given the sample of the level above (the top level's prior
    is N(0, I)). Free bits apply to every dimension of every level."""
    rec = _recon_mean(x, out.recon, likelihood, x_logvar)
    if not out.levels:  # an autoencoder: reconstruction only
        zero = rec.new_zeros(())
        return LossTerms(rec, rec, zero, rec.new_zeros(out.mu.shape[1]), beta, [])
    kl_true = kl_obj = 0.0
    kl_levels = []
    for level in out.levels:
        dims = kl_normal(level.mu, level.logvar, level.prior_mu, level.prior_logvar)  # (B, D_l)
        level_kl = dims.sum(dim=1).mean()
        kl_true = kl_true + level_kl
        kl_obj = kl_obj + (free_bits_kl(dims, free_bits) if free_bits > 0 else level_kl)
        kl_levels.append(level_kl.detach())
    top = kl_normal(out.mu, out.logvar) if len(out.levels) > 1 else dims
    return LossTerms(rec + beta * kl_obj, rec, kl_true, top.mean(dim=0).detach(), beta, kl_levels)


def vae_loss(
    x: torch.Tensor,
    recon: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    beta: float = 1.0,
    free_bits: float = 0.0,
    x_logvar: torch.Tensor | None = None,
) -> LossTerms:
    """The (β-weighted, optionally free-bits) negative ELBO of a one-level VAE's batch."""
    return elbo_loss(x, VAEOutput(recon, mu, logvar, mu), likelihood, beta, free_bits, x_logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension. (..., D) → (...)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension. (..., D) → (...)."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)


class Encodes(Protocol):
    """What the IWAE estimate needs of a model (the VAE, or a test's tractable model)."""

    likelihood: str
    x_logvar: torch.Tensor

    def encode(self, x, y=None): ...  # → (mu, logvar), (B, D) each

    def decode(self, z, y=None): ...  # → (B, C, H, W)


@torch.no_grad()
def iwae_nll(
    model: Encodes,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    k: int = 100,
    generator: torch.Generator | None = None,
    chunk: int = 64,
) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x) with K samples (Burda et al. 2015, eq. 8):

        -log p(x) ≈ -log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x).

    Its expectation is an upper bound on -log p(x) that tightens as K grows (K = 1 is the
    negative ELBO). Samples are drawn ``chunk`` at a time to bound memory. Returns (B,)."""
    if k < 1:
        raise ValueError(f"the number of importance samples must be at least 1, got {k}.")
    if getattr(getattr(model, "config", None), "autoencoder", False):
        raise ValueError("an autoencoder has no posterior to sample: the IWAE bound needs a VAE.")
    if getattr(model, "config", None) is not None and model.config.arch == "hierarchical":
        log_w_all = _hierarchical_log_weights(model, x, y, k, generator, chunk)
        return -(torch.logsumexp(log_w_all, dim=0) - math.log(k))
    mu, logvar = model.encode(x, y)  # (B, D)
    b, d = mu.shape
    log_w = []
    for start in range(0, k, chunk):
        kk = min(chunk, k - start)
        eps = torch.randn((kk, b, d), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (kk, B, D)
        zf = z.reshape(kk * b, d)
        yf = None if y is None else y.repeat(kk)
        xf = x.repeat(kk, *([1] * (x.dim() - 1)))  # (kk·B, C, H, W), sample-major like zf
        log_px = -recon_nll(xf, model.decode(zf, yf), model.likelihood, model.x_logvar)
        log_w.append(log_px.reshape(kk, b) + log_standard_normal(z) - log_normal(z, mu, logvar))
    log_w_all = torch.cat(log_w, dim=0)  # (K, B)
    return -(torch.logsumexp(log_w_all, dim=0) - math.log(k))


def _hierarchical_log_weights(model, x, y, k, generator, chunk) -> torch.Tensor:
    """log w = log p(x|z₁) + Σ_l [log p(z_l | z_{l+1}) − log q(z_l | x, z_{l+1})] for K joint
    samples of all levels drawn by the model's own forward pass. Returns (K, B)."""
    b = x.shape[0]
    log_w = []
    for start in range(0, k, chunk):
        kk = min(chunk, k - start)
        xf = x.repeat(kk, *([1] * (x.dim() - 1)))  # (kk·B, C, H, W), sample-major
        yf = None if y is None else (y.repeat(kk, 1) if y.dim() == 2 else y.repeat(kk))
        out = model(xf, yf, generator)
        lw = -recon_nll(xf, out.recon, model.likelihood, model.x_logvar)
        for level in out.levels:
            if level.prior_mu is None:
                lw = lw + log_standard_normal(level.z)
            else:
                lw = lw + log_normal(level.z, level.prior_mu, level.prior_logvar)
            lw = lw - log_normal(level.z, level.mu, level.logvar)
        log_w.append(lw.reshape(kk, b))
    return torch.cat(log_w, dim=0)
