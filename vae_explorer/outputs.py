"""What a forward pass returns: the reconstruction and every stochastic level's sample,
posterior and prior. Its own module, so that the loss and the models can both speak of it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .distributions import DiagonalGaussian


@dataclass
class LatentLevel:
    """One stochastic layer of a forward pass: the sample drawn, its posterior and its prior."""

    z: torch.Tensor  # (B, D_l) the reparameterized sample, z = μ + σ ⊙ ε
    q: DiagonalGaussian  # the posterior q(z_l | x, z_{l+1})
    p: DiagonalGaussian | None = None  # the prior p(z_l | z_{l+1}); None: N(0, I)


@dataclass
class VAEOutput:
    """Everything one forward pass produces. ``q`` and ``z`` are the *top* latent's: the one with
    the N(0, I) prior that the map, sampling and traversal work with."""

    recon: torch.Tensor  # (B, C, H, W) decoder output: logits (bernoulli) or means (gaussian)
    q: DiagonalGaussian  # (B, D) the top posterior
    z: torch.Tensor  # (B, D) its reparameterized sample (μ itself for an autoencoder)
    # Every stochastic level, bottom (nearest x) first; None means the one level (z, q) of a VAE,
    # [] an autoencoder's deterministic code (no KL term).
    levels: list[LatentLevel] | None = None

    def __post_init__(self) -> None:
        if self.levels is None:
            self.levels = [LatentLevel(self.z, self.q)]

    @property
    def mu(self) -> torch.Tensor:
        """(B, D) the top posterior's means (``q.mean``)."""
        return self.q.mean

    @property
    def logvar(self) -> torch.Tensor:
        """(B, D) the top posterior's log-variances (``q.logvar``)."""
        return self.q.logvar
