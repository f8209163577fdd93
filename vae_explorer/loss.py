"""The VAE objective as pure functions. All losses are in nats per image.

Negative ELBO (Kingma & Welling 2014, eq. 3, with β of Higgins et al. 2017):

    L(x) = E_q(z|x)[-log p(x|z)]  +  β · KL(q(z|x) || p(z))
           `---- reconstruction ----'     `------ KL term -----'

with q(z|x) = N(mu, diag σ²), p(z) = N(0, I) and the KL in closed form per dimension d:

    KL_d = ½ (mu_d² + σ_d² − 1 − log σ_d²).

The reconstruction term is estimated with one reparameterized sample z = mu + σ ⊙ ε.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class LossTerms:
    """One batch's objective and its parts (means over the batch, nats per image)."""

    loss: torch.Tensor  # () the objective minimised: recon + β · KL (with free bits if on)
    recon: torch.Tensor  # () E_q[-log p(x|z)], one-sample estimate
    kl: torch.Tensor  # () KL(q(z|x) || p(z)), the true value (free bits do not change it)
    kl_per_dim: torch.Tensor  # (D,) batch-mean KL of each latent dimension
    beta: float  # the β this batch was weighted with


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, σ²) || N(0, 1)) for each dimension. (B, D) → (B, D).
    Written with expm1: e^lv − 1 − lv cancels badly in float32 near lv = 0 and could go negative."""
    return 0.5 * (mu.pow(2) + torch.expm1(logvar) - logvar)


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
    """The (β-weighted, optionally free-bits) negative ELBO of a batch, nats per image."""
    if likelihood == "bernoulli":
        # Same value as recon_nll(...).mean(); one fused reduction keeps the step as cheap as a
        # hand-written training loop's (no (B, pixels) intermediate to sum and back-propagate).
        rec = F.binary_cross_entropy_with_logits(recon, x, reduction="sum") / x.shape[0]
    else:
        rec = recon_nll(x, recon, likelihood, x_logvar).mean()
    kl_dims = kl_per_dim(mu, logvar)  # (B, D)
    kl_true = kl_dims.sum(dim=1).mean()
    kl_obj = free_bits_kl(kl_dims, free_bits) if free_bits > 0 else kl_true
    return LossTerms(rec + beta * kl_obj, rec, kl_true, kl_dims.mean(dim=0).detach(), beta)


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
