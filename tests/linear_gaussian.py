"""A VAE whose decoder is linear with a Gaussian likelihood, p(x|z) = N(Wz + b, s² I): its
posterior and evidence have closed forms (the tests of gaps.py and true_posterior.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vae_explorer.config import ModelConfig
from vae_explorer.model import VAE


@dataclass
class LinearGaussian:
    model: VAE  # its decoder replaced by z ↦ Wz + b
    w: torch.Tensor  # (P, D) float64
    b: torch.Tensor  # (P,)
    s: float  # the likelihood's standard deviation

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z|x) = N(m, Σ): Σ = (I + WᵀW / s²)⁻¹, m = Σ Wᵀ(x − b) / s². x (P,) → (D,), (D, D)."""
        d = self.w.shape[1]
        cov = torch.linalg.inv(torch.eye(d, dtype=torch.float64) + self.w.T @ self.w / self.s**2)
        return cov @ self.w.T @ (x.double() - self.b) / self.s**2, cov

    def log_evidence(self, x: torch.Tensor) -> float:
        """log p(x) = log N(x; b, WWᵀ + s² I)."""
        p = len(self.b)
        cov = self.w @ self.w.T + self.s**2 * torch.eye(p, dtype=torch.float64)
        r = x.double() - self.b
        _, logdet = torch.linalg.slogdet(cov)
        return float(-0.5 * (p * math.log(2 * math.pi) + logdet + r @ torch.linalg.solve(cov, r)))


def linear_gaussian(w: torch.Tensor, s: float = 0.5, seed: int = 0) -> LinearGaussian:
    """A 4×4-pixel VAE (random MLP encoder) with the linear decoder W (16, D) and a bias."""
    p, d = w.shape
    cfg = ModelConfig(
        input_shape=(1, 4, 4), latent_dim=d, hidden_dim=16, likelihood="gaussian", gaussian_std=s
    )
    torch.manual_seed(seed)
    model = VAE(cfg)
    b = 0.5 + 0.1 * torch.randn(p, generator=torch.Generator().manual_seed(seed))
    model.decoder = nn.Linear(d, p)
    with torch.no_grad():
        model.decoder.weight.copy_(w)
        model.decoder.bias.copy_(b)
    return LinearGaussian(model, w.double(), b.double(), s)
