"""A two-level hierarchical VAE: z₂ → z₁ → x.

Generative model (top-down):   p(z₂) = N(0, I),  p(z₁|z₂) = N(μ_p(z₂), σ_p²(z₂)),  p(x|z₁).
Inference model (top-down too, the ordering of the Ladder VAE, Sønderby et al. 2016):
    q(z₂|x) = N(μ₂(x), σ₂²(x)),   q(z₁|x, z₂) = N(μ₁(x, z₂), σ₁²(x, z₂)).

Because both factorisations run in the same order, each level's KL has a closed form given the
sample of the level above, and the negative ELBO splits into one term per level:

    −ELBO(x) = E_q[−log p(x|z₁)] + E_q(z₂|x)[KL(q(z₁|x,z₂) ‖ p(z₁|z₂))] + KL(q(z₂|x) ‖ N(0, I)).

The top level z₂ plays the part z plays in the one-level VAE: its prior is N(0, I), so the map,
prior samples, interpolation and traversal all work on z₂. ``decode(z₂)`` shows the image of
the mean of p(z₁|z₂) — the typical image of that top-level code.

Shapes: x (B, C, H, W); z₂ (B, D₂) with D₂ = config.latent_dim; z₁ (B, D₁) with
D₁ = config.bottom_latent_dim; H = config.hidden_dim.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .distributions import DiagonalGaussian
from .loss import levels_log_weights
from .model import LatentLevel, LatentModel, VAEOutput


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class HierarchicalVAE(LatentModel):
    """Two stochastic levels with MLPs; conditional models feed the label to every network."""

    INFERENCE_MODULES = ("trunk", "q_top", "q_bottom")  # q(z₂|x) and q(z₁|x, z₂)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        h, d2, d1, extra = config.hidden_dim, config.latent_dim, config.bottom_latent_dim, self._extra
        # Bottom-up features of x shared by both posteriors.  (B, C·H·W [+K]) → (B, H)
        self.trunk = nn.Sequential(nn.Linear(config.input_dim + extra, h), nn.ReLU())
        self.q_top = nn.Linear(h, 2 * d2)  # (B, H) → mu₂, logvar₂
        self.q_bottom = _mlp(h + d2, h, 2 * d1)  # (B, H + D₂) → mu₁, logvar₁
        self.p_bottom = _mlp(d2 + extra, h, 2 * d1)  # (B, D₂ [+K]) → prior mean, logvar of z₁
        self.decoder = _mlp(d1 + extra, h, config.input_dim)  # (B, D₁ [+K]) → x's parameters

    def _features(self, x: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        return self.trunk(self._cat(x.flatten(1), y1h))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z₂|x[,y]), (B, D₂): the top level, the one on the map."""
        return self._gaussian(self.q_top(self._features(x, self._one_hot(y, x.shape[0]))))

    def prior_bottom(self, z_top: torch.Tensor, y1h: torch.Tensor | None) -> DiagonalGaussian:
        """p(z₁|z₂[,y]), (B, D₁)."""
        return self._gaussian(self.p_bottom(self._cat(z_top, y1h)))

    def _decode_bottom(self, z1: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(self._cat(z1, y1h)).reshape(z1.shape[0], *self.config.input_shape)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z₂ (B, D₂) → p(x|z₁) parameters (B, C, H, W) at z₁ = the mean of p(z₁|z₂)."""
        y1h = self._one_hot(y, z.shape[0])
        return self._decode_bottom(self.prior_bottom(z, y1h).mode(), y1h)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> VAEOutput:
        y1h = self._one_hot(y, x.shape[0])
        feats = self._features(x, y1h)  # (B, H)
        q2 = self._gaussian(self.q_top(feats))
        z2 = q2.sample(generator)  # ε for z₂ first, then for z₁
        q1 = self._gaussian(self.q_bottom(torch.cat([feats, z2], dim=1)))
        z1 = q1.sample(generator)
        levels = [LatentLevel(z1, q1, self.prior_bottom(z2, y1h)), LatentLevel(z2, q2)]
        return VAEOutput(self._decode_bottom(z1, y1h), q2, z2, levels)

    def reconstruct(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decoder output for x through both posteriors: their means, or samples with a generator."""
        if generator is not None:
            return self.forward(x, y, generator).recon
        y1h = self._one_hot(y, x.shape[0])
        feats = self._features(x, y1h)
        z2 = self._gaussian(self.q_top(feats)).mode()
        z1 = self._gaussian(self.q_bottom(torch.cat([feats, z2], dim=1))).mode()
        return self._decode_bottom(z1, y1h)

    def log_importance_weights(
        self, x: torch.Tensor, y: torch.Tensor | None, k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log w for k joint samples of both levels, drawn by the model's own forward pass on x
        repeated k times (sample-major), (k, B): see loss.levels_log_weights."""
        b = x.shape[0]
        xf = x.repeat(k, *([1] * (x.dim() - 1)))  # (k·B, C, H, W)
        yf = None if y is None else (y.repeat(k, 1) if y.dim() == 2 else y.repeat(k))
        out = self.forward(xf, yf, generator)
        return levels_log_weights(xf, out, self.likelihood, self.x_logvar).reshape(k, b)
