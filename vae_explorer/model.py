"""The VAE: encoder q(z|x[,y]) = N(μ, diag σ²) (a ``DiagonalGaussian``), prior p(z) = N(0, I),
decoder p(x|z[,y]).

Shapes: x (B, C, H, W) in [0, 1]; y (B,) int64 labels; μ, log σ², z (B, D);
decoder output (B, C, H, W): logits for the Bernoulli likelihood, means for the Gaussian one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .distributions import DiagonalGaussian
from .loss import one_level_log_weights
from .outputs import LatentLevel, VAEOutput  # noqa: F401 (the models' outputs; re-exported)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for a block (no dropout-like training behaviour, no gradients), then the mode
    the model had: every read-only use of a model — decoding, encoding a data set, evaluation."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


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

    # The sub-modules of the inference network q(z|x); every other parameter (the decoder, the
    # lower level's prior, a learned σ) belongs to the generative model. A training step may move
    # one side alone (run_state.PARTS): the lagging-encoder lab (He et al. 2019) needs it.
    INFERENCE_MODULES: tuple[str, ...] = ("encoder",)

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

    def side_parameters(self, inference: bool) -> list[nn.Parameter]:
        """The trainable parameters of q(z|x) (``inference=True``) or of the generative model."""
        return [
            p
            for name, p in self.named_parameters()
            if p.requires_grad and (name.split(".")[0] in self.INFERENCE_MODULES) == inference
        ]

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

    def _gaussian(self, h: torch.Tensor) -> DiagonalGaussian:
        """A head's (B, 2·D) output → N(μ, σ²), log σ² clamped to the config's range (so that
        exp() cannot overflow: the NaN fix)."""
        mu, logvar = h.chunk(2, dim=1)
        if self.config.clamp_logvar:
            logvar = logvar.clamp(self.config.logvar_min, self.config.logvar_max)
        return DiagonalGaussian(mu, logvar)

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

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z|x[,y]) = N(μ, σ²), (B, D); a point for the autoencoder."""
        y1h = self._one_hot(y, x.shape[0])
        if self.config.arch == "mlp":
            flat = x.flatten(1)  # (B, C·H·W); flatten keeps an empty batch (0, C·H·W)
            if y1h is not None:
                flat = torch.cat([flat, y1h], dim=1)
            h = self.encoder(flat)
        else:
            h = self.encoder(x, y1h)
        q = self._gaussian(h)
        if self.config.autoencoder:
            # A point, not a distribution: the narrowest posterior the clamp allows, so that
            # diagnostics reading σ (the aggregate-posterior gap) see the codes as points.
            point = torch.full_like(q.mean, self.config.logvar_min)
            return DiagonalGaussian(q.mean, point, deterministic=True)
        return q

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """p(x|z[,y]) parameters (B, C, H, W): logits (bernoulli) or means (gaussian)."""
        out = self.decoder(self._cat(z, self._one_hot(y, z.shape[0])))
        return out.reshape(z.shape[0], *self.config.input_shape)

    def reconstruct(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decoder output for x through its posterior: decode(μ), or a sampled z with a generator."""
        q = self.encode(x, y)
        return self.decode(q.mode() if generator is None else q.sample(generator), y)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> VAEOutput:
        q = self.encode(x, y)
        if q.deterministic:  # z = μ: no noise, and no stochastic level to pay KL for
            return VAEOutput(self.decode(q.mean, y), q, q.mean, levels=[])
        z = q.sample(generator)
        return VAEOutput(self.decode(z, y), q, z)

    def log_importance_weights(
        self, x: torch.Tensor, y: torch.Tensor | None, k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) for k draws z_k ~ q(z|x), (k, B):
        one encoding serves all k (loss.one_level_log_weights)."""
        q = self.encode(x, y)
        if q.deterministic:
            raise ValueError("an autoencoder has no posterior to sample: the IWAE bound needs a VAE.")
        return one_level_log_weights(x, y, q, self.decode, self.likelihood, self.x_logvar, k, generator)
