"""The Gaussian posterior, as one object: q(z|x) = N(μ, diag σ²).

Every encoder here returns a ``DiagonalGaussian``; each stochastic level of a forward pass holds
its posterior q and its prior p (``model.LatentLevel``). The reparameterization is written once,
in ``DiagonalGaussian.reparameterize``:

    z = μ + σ ⊙ ε,   ε ~ N(0, I)

so that the randomness is an input and gradients reach μ and σ (Kingma & Welling 2014, §2.4).
The KL between two diagonal Gaussians and the log-density are the closed forms below.

Shapes: ``mean`` and ``logvar`` are (..., D), usually (B, D); methods keep the leading
dimensions and reduce over D where they say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .distributed import ShardedNoise

LOG_2PI = math.log(2.0 * math.pi)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(μ, σ²) ‖ N(0, 1)) of each dimension, (..., D) → (..., D):

        KL_d = ½ (μ_d² + σ_d² − 1 − log σ_d²),

    written with expm1: e^lv − 1 − lv cancels badly in float32 near lv = 0 and could go negative."""
    return 0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar)


def kl_normal(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form KL(N(μ, σ²) ‖ N(m_p, σ_p²)) per dimension, (..., D) → (..., D):

        KL_d = ½ (σ²/σ_p² − 1 − log(σ²/σ_p²) + (μ − m_p)²/σ_p²),

    with r = log σ² − log σ_p² written through expm1 (as in ``kl_per_dim``). A missing prior is
    N(0, I), and then this is exactly ``kl_per_dim``."""
    if prior_mu is None or prior_logvar is None:
        return kl_per_dim(mu, logvar)
    r = logvar - prior_logvar
    return 0.5 * (torch.expm1(r) - r + (mu - prior_mu).pow(2) * torch.exp(-prior_logvar))


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag exp(logvar)) summed over the last dimension. (..., D) → (...)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension. (..., D) → (...)."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)


@dataclass(frozen=True)
class DiagonalGaussian:
    """N(mean, diag exp(logvar)): an encoder's q(z|x) for a batch, or a level's prior p(z_l|z_{l+1})."""

    mean: torch.Tensor  # (..., D) μ
    logvar: torch.Tensor  # (..., D) log σ², already clamped by the encoder when the config says so
    # A point, not a distribution: the plain autoencoder's code z = μ. It samples its mean, has
    # σ = 0, and keeps the narrowest logvar the clamp allows so that diagnostics see a point.
    deterministic: bool = False

    @property
    def std(self) -> torch.Tensor:
        """σ = exp(½ log σ²), (..., D); 0 for a point."""
        if self.deterministic:
            return torch.zeros_like(self.mean)
        return torch.exp(0.5 * self.logvar)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """z = μ + σ ⊙ ε for a given ε of shape (..., D) or (K, ..., D): the whole trick. μ and σ
        are on the gradient's path to the loss, ε is an input (∂z/∂μ = 1, ∂z/∂σ = ε)."""
        return self.mean + self.std * eps

    def sample(
        self, generator: torch.Generator | ShardedNoise | None = None, n: int | None = None
    ) -> torch.Tensor:
        """One reparameterized draw (..., D), or ``n`` of them (n, ..., D); ε comes from
        ``generator`` (seeded: the same seed gives the same z), or from a ``ShardedNoise``: a
        process's rows of the global batch's ε when several train together."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        if isinstance(generator, ShardedNoise):
            if n is not None:
                raise ValueError("a shard's noise gives one draw per image, not n of them.")
            eps = generator.randn(shape, self.mean.device, self.mean.dtype)
        else:
            eps = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.reparameterize(eps)

    def mode(self) -> torch.Tensor:
        """The most likely z: μ (what a reconstruction "through the mean" decodes)."""
        return self.mean

    def kl(self, prior: DiagonalGaussian | None = None) -> torch.Tensor:
        """KL(self ‖ prior) per dimension in closed form, (..., D); prior None is N(0, I)."""
        if self.deterministic:
            raise ValueError("a point has no KL to a density: the autoencoder pays no KL term.")
        if prior is None:
            return kl_per_dim(self.mean, self.logvar)
        return kl_normal(self.mean, self.logvar, prior.mean, prior.logvar)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log density at z, summed over D: (..., D) → (...); z may carry extra leading sample
        dimensions, e.g. (K, B, D) against a (B, D) posterior."""
        if self.deterministic:
            raise ValueError("a point has no density: the IWAE bound needs a VAE.")
        return log_normal(z, self.mean, self.logvar)

    def __getitem__(self, index) -> DiagonalGaussian:
        """The posterior of some rows, e.g. ``q[:8]`` (a batch's first eight inputs)."""
        return DiagonalGaussian(self.mean[index], self.logvar[index], self.deterministic)

    def __len__(self) -> int:
        return len(self.mean)

    def to(self, device: torch.device | str) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean.to(device), self.logvar.to(device), self.deterministic)
