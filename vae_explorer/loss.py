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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from .distributed import BatchShard
from .distributions import LOG_2PI, DiagonalGaussian, kl_normal, kl_per_dim, log_standard_normal
from .outputs import VAEOutput

__all__ = ["LOG_2PI", "LossTerms", "elbo_loss", "iwae_nll", "kl_normal", "kl_per_dim", "recon_nll"]


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
    return nll.flatten(1).sum(dim=1)


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float, shard: BatchShard | None = None) -> torch.Tensor:
    """Free bits (Kingma et al. 2016, eq. 15), one group per latent dimension:

        Σ_d max(λ, mean_batch KL_d).

    A dimension whose batch-average KL is below λ nats gets no gradient pushing it lower, so
    the encoder keeps at least λ nats there instead of collapsing. Clamping the batch mean (not
    each image) is the paper's choice: it lets single images use less. (B, D) → ().

    On a shard of a global batch, the clamp is decided on the *global* batch mean (summed across
    processes) and each shard returns its share: the shares add up to the value above and their
    gradients to its gradient, as if one process had the whole batch."""
    if shard is None:
        per_dim = kl_dims.mean(dim=0)  # (D,)
        if free_bits > 0:
            per_dim = per_dim.clamp(min=free_bits)
        return per_dim.sum()
    share = shard.share(kl_dims)  # (D,) this shard's part of the global batch mean
    above = shard.sum_across(share) > free_bits  # (D,) the same on every process
    floor = free_bits * (shard.hi - shard.lo) / shard.rows  # its share of λ where λ is kept
    return torch.where(above, share, torch.full_like(share, floor)).sum()


def _recon_mean(
    x: torch.Tensor,
    recon: torch.Tensor,
    likelihood: str,
    x_logvar: torch.Tensor | None,
    shard: BatchShard | None = None,
) -> torch.Tensor:
    """Batch mean of -log p(x|z), () (a shard's share of the global batch's mean)."""
    rows = x.shape[0] if shard is None else shard.rows
    if likelihood == "bernoulli":
        # Same value as recon_nll(...).mean(); one fused reduction keeps the step as cheap as a
        # hand-written training loop's (no (B, pixels) intermediate to sum and back-propagate).
        return F.binary_cross_entropy_with_logits(recon, x, reduction="sum") / rows
    nll = recon_nll(x, recon, likelihood, x_logvar)
    return nll.mean() if shard is None else shard.share(nll)


def elbo_loss(
    x: torch.Tensor,
    out: VAEOutput,
    likelihood: str,
    beta: float = 1.0,
    free_bits: float = 0.0,
    x_logvar: torch.Tensor | None = None,
    shard: BatchShard | None = None,
) -> LossTerms:
    """The (β-weighted, optionally free-bits) negative ELBO of a forward pass, nats per image:

        recon + β · Σ_levels KL(q(z_l | x, z_{l+1}) || p(z_l | z_{l+1})),

    each level's KL in closed form given the sample of the level above (the top level's prior
    is N(0, I)). Free bits apply to every dimension of every level.

    With a ``shard`` (training on several processes), x is one process's rows of a global batch
    and every term is its share of the global batch mean: summed across processes, the terms
    and their gradients are those of the whole batch (distributed.py)."""
    mean = (lambda t: t.mean(dim=0)) if shard is None else shard.share  # (b, …) → (…)
    rec = _recon_mean(x, out.recon, likelihood, x_logvar, shard)
    if not out.levels:  # an autoencoder: reconstruction only
        zero = rec.new_zeros(())
        return LossTerms(rec, rec, zero, rec.new_zeros(out.q.mean.shape[1]), beta, [])
    kl_true = kl_obj = 0.0
    kl_levels = []
    for level in out.levels:
        dims = level.q.kl(level.p)  # (B, D_l), closed form
        level_kl = mean(dims.sum(dim=1))
        kl_true = kl_true + level_kl
        kl_obj = kl_obj + (free_bits_kl(dims, free_bits, shard) if free_bits > 0 else level_kl)
        kl_levels.append(level_kl.detach())
    top = out.q.kl() if len(out.levels) > 1 else dims
    return LossTerms(rec + beta * kl_obj, rec, kl_true, mean(top).detach(), beta, kl_levels)


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
    out = VAEOutput(recon, DiagonalGaussian(mu, logvar), mu)
    return elbo_loss(x, out, likelihood, beta, free_bits, x_logvar)


# -- the importance-weighted bound ------------------------------------------------------------


def one_level_log_weights(
    x: torch.Tensor,
    y: torch.Tensor | None,
    q: DiagonalGaussian,
    decode: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    likelihood: str,
    x_logvar: torch.Tensor | None,
    k: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log N(z_k; 0, I) − log q(z_k|x) for k draws z_k ~ q (B, D) of a
    one-level model; q is encoded once for all k. x (B, C, H, W) → (k, B)."""
    z = q.sample(generator, n=k)  # (k, B, D)
    b, d = q.mean.shape
    yf = None if y is None else y.repeat(k)
    xf = x.repeat(k, *([1] * (x.dim() - 1)))  # (k·B, C, H, W), sample-major like z
    log_px = -recon_nll(xf, decode(z.reshape(k * b, d), yf), likelihood, x_logvar).reshape(k, b)
    return log_px + log_standard_normal(z) - q.log_prob(z)


def levels_log_weights(
    x: torch.Tensor, out: VAEOutput, likelihood: str, x_logvar: torch.Tensor | None
) -> torch.Tensor:
    """log w = log p(x|z₁) + Σ_l [log p(z_l | z_{l+1}) − log q(z_l | x, z_{l+1})] for the joint
    sample of every level a forward pass drew (the top level's prior is N(0, I)). (N,)."""
    lw = -recon_nll(x, out.recon, likelihood, x_logvar)
    for level in out.levels:
        lw = lw + (log_standard_normal(level.z) if level.p is None else level.p.log_prob(level.z))
        lw = lw - level.q.log_prob(level.z)
    return lw


class ImportanceWeights(Protocol):
    """What the IWAE estimate needs of a model (a VAE, a hierarchical VAE, a test's tractable
    model): the log-weights of k posterior draws for a batch, (k, B)."""

    def log_importance_weights(self, x, y, k, generator=None): ...


@torch.no_grad()
def iwae_nll(
    model: ImportanceWeights,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    k: int = 100,
    generator: torch.Generator | None = None,
    chunk: int = 64,
) -> torch.Tensor:
    """Importance-weighted estimate of −log p(x) with K samples (Burda et al. 2015, eq. 8):

        −log p(x) ≈ −log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x).

    Its expectation is an upper bound on −log p(x) that tightens as K grows (K = 1 is the
    negative ELBO). Samples are drawn ``chunk`` at a time to bound memory. Returns (B,)."""
    if k < 1:
        raise ValueError(f"the number of importance samples must be at least 1, got {k}.")
    log_w = [
        model.log_importance_weights(x, y, min(chunk, k - start), generator) for start in range(0, k, chunk)
    ]
    return -(torch.logsumexp(torch.cat(log_w, dim=0), dim=0) - math.log(k))
