"""The VAE: encoder q(z|x[,y]) = N(mu, diag(exp(logvar))), prior p(z) = N(0, I), decoder p(x|z[,y]).

Shapes: x (B, C, H, W) in [0, 1]; y (B,) int64 labels; mu, logvar, z (B, D);
decoder output (B, C, H, W): logits for the Bernoulli likelihood, means for the Gaussian one.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


@dataclass
class LatentLevel:
    """One stochastic layer of a forward pass: its posterior, its prior and the sample drawn."""

    z: torch.Tensor  # (B, D_l) the reparameterized sample
    mu: torch.Tensor  # (B, D_l) posterior means
    logvar: torch.Tensor  # (B, D_l) posterior log-variances (clamped)
    prior_mu: torch.Tensor | None = None  # (B, D_l) prior means given the level above; None: N(0, I)
    prior_logvar: torch.Tensor | None = None  # (B, D_l) prior log-variances; None: N(0, I)


@dataclass
class VAEOutput:
    """Everything one forward pass produces. ``mu``, ``logvar`` and ``z`` are the *top* latent's:
    the one with the N(0, I) prior that the map, sampling and traversal work with."""

    recon: torch.Tensor  # (B, C, H, W) decoder output: logits (bernoulli) or means (gaussian)
    mu: torch.Tensor  # (B, D) posterior means
    logvar: torch.Tensor  # (B, D) posterior log-variances (clamped)
    z: torch.Tensor  # (B, D) the reparameterized sample
    # Every stochastic level, bottom (nearest x) first; None means the one level (z, mu, logvar)
    # of a VAE, [] an autoencoder's deterministic code (no KL term).
    levels: list[LatentLevel] | None = None

    def __post_init__(self) -> None:
        if self.levels is None:
            self.levels = [LatentLevel(self.z, self.mu, self.logvar)]


def _mlp_encoder(cfg: ModelConfig, extra: int) -> nn.Module:
    # 784-400-(2×20) in pytorch/examples; one head gives mu and logvar side by side.
    return nn.Sequential(
        nn.Linear(cfg.input_dim + extra, cfg.hidden_dim),
        nn.ReLU(),
        nn.Linear(cfg.hidden_dim, 2 * cfg.latent_dim),
    )


def _mlp_decoder(cfg: ModelConfig, extra: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(cfg.latent_dim + extra, cfg.hidden_dim),
        nn.ReLU(),
        nn.Linear(cfg.hidden_dim, cfg.input_dim),
    )


class _ConvEncoder(nn.Module):
    """Two stride-2 4×4 convolutions (H → H/4), then a hidden layer; the label joins after flatten."""

    def __init__(self, cfg: ModelConfig, extra: int) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(
            nn.Linear(64 * (h // 4) * (w // 4) + extra, cfg.hidden_dim),
            nn.ReLU(),
            nn.Linear(cfg.hidden_dim, 2 * cfg.latent_dim),
        )

    def forward(self, x: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        feats = self.conv(x)  # (B, 64·H/4·W/4)
        if y1h is not None:
            feats = torch.cat([feats, y1h], dim=1)
        return self.fc(feats)


class _ConvDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig, extra: int) -> None:
        super().__init__()
        c, h, w = cfg.input_shape
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim + extra, cfg.hidden_dim),
            nn.ReLU(),
            nn.Linear(cfg.hidden_dim, 64 * (h // 4) * (w // 4)),
            nn.ReLU(),
            nn.Unflatten(1, (64, h // 4, w // 4)),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )

    def forward(self, zy: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(zy))


class LatentModel(nn.Module):
    """What every model here shares: the config, the likelihood's log-variance, labels for
    conditional models, the reparameterization and the image to show. ``VAE`` and
    ``HierarchicalVAE`` add their own encode/decode."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # log σ² of the Gaussian likelihood, one per pixel; a buffer when fixed, so that it is
        # saved with the weights either way.  (C·H·W,)
        init = torch.full((config.input_dim,), 2.0 * math.log(config.gaussian_std))
        if config.likelihood == "gaussian" and config.gaussian_variance == "learned":
            self.x_logvar = nn.Parameter(init)
        else:
            self.register_buffer("x_logvar", init)

    @property
    def likelihood(self) -> str:
        return self.config.likelihood

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def _extra(self) -> int:
        """Width of the label input: the one-hot of a conditional model, else nothing."""
        return self.config.num_classes if self.config.conditional else 0

    def _one_hot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        if y is None:
            raise ValueError("this is a conditional model: a class label is required.")
        y = torch.as_tensor(y, device=self.x_logvar.device)
        if y.is_floating_point() and y.dim() == 2:
            # Soft labels (B, K): a mixture of one-hots, e.g. to interpolate between two classes.
            if y.shape != (batch, self.config.num_classes) or not torch.isfinite(y).all():
                raise ValueError(f"soft labels must have shape ({batch}, {self.config.num_classes}).")
            return y.to(self.x_logvar.dtype)
        y = y.long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch:
            raise ValueError(f"got {y.numel()} labels for {batch} inputs.")
        if (y < 0).any() or (y >= self.config.num_classes).any():
            raise ValueError(f"labels must be between 0 and {self.config.num_classes - 1}.")
        return F.one_hot(y, self.config.num_classes).to(self.x_logvar.dtype)

    @staticmethod
    def _cat(a: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        return a if y1h is None else torch.cat([a, y1h], dim=1)

    def _split(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A head's (B, 2·D) output → (mu, logvar), logvar clamped to the config's range."""
        mu, logvar = h.chunk(2, dim=1)
        if self.config.clamp_logvar:
            logvar = logvar.clamp(self.config.logvar_min, self.config.logvar_max)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + σ ⊙ ε with ε ~ N(0, I): the randomness sits outside the parameters, so
        gradients flow to mu and logvar (Kingma & Welling 2014, §2.4)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def mean_image(self, recon: torch.Tensor) -> torch.Tensor:
        """Decoder output → the image to show (the likelihood's mean), in [0, 1]."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(recon)
        return recon.clamp(0.0, 1.0)


class VAE(LatentModel):
    """A (conditional) VAE with an MLP or convolutional encoder/decoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        extra = self._extra
        if config.arch == "mlp":
            self.encoder = _mlp_encoder(config, extra)
            self.decoder = _mlp_decoder(config, extra)
        else:
            self.encoder = _ConvEncoder(config, extra)
            self.decoder = _ConvDecoder(config, extra)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[,y]) → (mu, logvar), each (B, D); logvar clamped to the config's range."""
        y1h = self._one_hot(y, x.shape[0])
        if self.config.arch == "mlp":
            flat = x.reshape(x.shape[0], -1)  # (B, C·H·W)
            if y1h is not None:
                flat = torch.cat([flat, y1h], dim=1)
            h = self.encoder(flat)
        else:
            h = self.encoder(x, y1h)
        mu, logvar = self._split(h)
        if self.config.autoencoder:
            # A point, not a distribution: report the narrowest posterior the clamp allows, so
            # diagnostics that read σ (the aggregate-posterior gap) see the codes as points.
            logvar = torch.full_like(mu, self.config.logvar_min)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """p(x|z[,y]) parameters (B, C, H, W): logits (bernoulli) or means (gaussian)."""
        out = self.decoder(self._cat(z, self._one_hot(y, z.shape[0])))
        return out.reshape(z.shape[0], *self.config.input_shape)

    def reconstruct(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decoder output for x through its posterior: decode(mu), or a sampled z with a generator."""
        mu, logvar = self.encode(x, y)
        z = mu if generator is None or self.config.autoencoder else self.reparameterize(mu, logvar, generator)
        return self.decode(z, y)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> VAEOutput:
        mu, logvar = self.encode(x, y)
        if self.config.autoencoder:  # z = mu: no noise, and no stochastic level to pay KL for
            return VAEOutput(self.decode(mu, y), mu, logvar, mu, levels=[])
        z = self.reparameterize(mu, logvar, generator)
        return VAEOutput(self.decode(z, y), mu, logvar, z)


_BUILD_LOCK = threading.Lock()


def build_model(config: ModelConfig, seed: int = 0, device: torch.device | str = "cpu") -> LatentModel:
    """A freshly initialised model of the config's architecture; the seed fixes the weights
    without touching global RNG state."""
    from .hierarchical import HierarchicalVAE  # it builds on this module

    # fork_rng + manual_seed go through the process-wide generator: two sessions building models
    # at the same moment would draw from each other's seeds, so builds take turns.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HierarchicalVAE(config) if config.arch == "hierarchical" else VAE(config)
    return model.to(device)


def select_device(prefer: str | None = None) -> torch.device:
    """CUDA when a GPU is there (or asked for), else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads() -> int:
    """Use the cores this process may run on (a container often has fewer than the host)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    n = max(1, min(n, 8))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
