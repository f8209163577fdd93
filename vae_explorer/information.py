"""How much the code says about the input: ELBO surgery (Hoffman & Johnson 2016).

Over a data set of N images, the average KL term splits exactly into two parts:

    (1/N) Σ_n KL(q(z|x_n) ‖ p(z))  =  I_q(n; z)  +  KL(q(z) ‖ p(z)),

where q(n, z) = q(z|x_n) / N is the data-index joint and q(z) = (1/N) Σ_n q(z|x_n) the aggregate
posterior. The first part is how much z tells about *which* image it came from; the second is
how far the codes as a whole are from the prior. Since q(z) ≥ q(z|x_n) / N, the information is
at most log N: with well separated posteriors (a large KL) it saturates there, and a KL spent
beyond log N only pushes q(z) away from the prior. A collapsed posterior has I ≈ 0.

Estimated by Monte Carlo with draws z ~ q(z|x_n) from every posterior:

    I ≈ mean_n [log q(z_n|x_n) − log q(z_n)],   log q(z) = logsumexp_m log q(z|x_m) − log N,

which is exactly 0 for identical posteriors and exactly log N for separated ones, whatever the
draws (the two logs move together), and kept in [0, min(KL, log N)], where the true value lies;
KL(q(z) ‖ p(z)) is then the closed-form average KL minus I, so that the two parts add up to the KL
exactly and neither is negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .distributions import LOG_2PI, DiagonalGaussian

INFO_IMAGES = 2000  # posteriors in the mixture q(z) when training evaluates an epoch (I ≤ log 2000 = 7.6)


@dataclass(frozen=True)
class InformationSplit:
    """The average KL of a set of posteriors and its two parts, nats per image."""

    kl: float  # (1/N) Σ_n KL(q(z|x_n) ‖ p(z)), closed form
    mutual_info: float  # I_q(n; z): what z says about which input it encodes, in [0, log N]
    marginal_kl: float  # KL(q(z) ‖ p(z)): the aggregate posterior against the prior, ≥ 0
    log_n: float  # log N, the most the information can be
    n: int  # posteriors in the mixture
    samples: int  # draws of z per posterior for the Monte Carlo part


def _log_mixture(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z) = logsumexp_m log N(z; μ_m, σ²_m) − log N for z (c, D) against every component
    (N, D) → (c,). The squares are expanded into two matrix products, (c, D) @ (D, N), so that no
    (c, N, D) tensor is made; in float64 the cancellation this invites stays far below 1e-6."""
    inv = torch.exp(-logvar)  # (N, D) 1/σ²
    const = (LOG_2PI + logvar + mu.pow(2) * inv).sum(dim=1)  # (N,)
    quad = z.pow(2) @ inv.T - 2.0 * z @ (mu * inv).T + const  # (c, N) Σ_d (z_d − μ_md)²/σ²_md + …
    return torch.logsumexp(-0.5 * quad, dim=1) - math.log(mu.shape[0])


@torch.no_grad()
def information_split(
    q: DiagonalGaussian, samples: int = 1, generator: torch.Generator | None = None, chunk: int = 512
) -> InformationSplit:
    """I(x; z) and KL(q(z) ‖ p(z)) of the posteriors q (N, D) of N inputs (the module's formulas).
    ``samples`` draws of z per posterior, from ``generator``; memory is bounded by ``chunk``."""
    if q.deterministic:
        raise ValueError("an autoencoder's codes are points: the information split needs a VAE's posteriors.")
    if samples < 1:
        raise ValueError(f"at least one draw per posterior is needed, got {samples}.")
    mu, logvar = q.mean.detach().double().cpu(), q.logvar.detach().double().cpu()
    if mu.dim() != 2 or len(mu) == 0:
        raise ValueError("the information split needs the posteriors of at least one input, shape (N, D).")
    n, d = mu.shape
    kl = float((0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar)).sum(dim=1).mean())  # closed form
    std = torch.exp(0.5 * logvar)
    total = 0.0
    for _ in range(samples):
        eps = torch.randn(n, d, generator=generator, dtype=torch.float32).double()
        z = mu + std * eps  # (N, D), one draw from each posterior
        log_own = -0.5 * (LOG_2PI + logvar + eps.pow(2)).sum(dim=1)  # (N,) log q(z_n|x_n)
        for i in range(0, n, chunk):
            total += float((log_own[i : i + chunk] - _log_mixture(z[i : i + chunk], mu, logvar)).sum())
    # The true value lies in [0, min(KL, log N)]; a Monte Carlo estimate can stray just outside
    # (an untrained model: I ≈ 0), and moving it back to the interval only brings it closer.
    info = min(max(total / (n * samples), 0.0), kl, math.log(n))
    return InformationSplit(
        kl=kl,
        mutual_info=info,
        marginal_kl=kl - info,
        log_n=math.log(n),
        n=n,
        samples=samples,
    )
