"""The gaps of one image (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in VAEs").

For an input x, three bounds on −log p(x), nats (lower is tighter):

    −ELBO(q_φ)  ≥  −ELBO(q*)  ≥  −log p(x)  ≈  IWAE_K(q*)

q_φ(z|x) is the encoder's posterior; q* a Gaussian of the same family fitted to this image alone
(Adam on its μ and log σ², starting from q_φ). Their differences are

    amortization gap   = −ELBO(q_φ) − −ELBO(q*)   (one encoder for every image: its cost here)
    approximation gap  = −ELBO(q*) − IWAE_K(q*)   (a diagonal Gaussian cannot be the true posterior)

the second measured against the importance-weighted bound (Burda et al. 2015) with K draws from
q*, which is itself an upper bound on −log p(x): the approximation gap shown is at most the true
one. Each ELBO is estimated on the same ``samples`` draws of ε (common random numbers), so that
their difference is not Monte Carlo noise; the optimiser keeps the best q it has seen on those
draws (the start included), so −ELBO(q*) ≤ −ELBO(q_φ) on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .distributions import DiagonalGaussian
from .loss import iwae_nll, one_level_log_weights, recon_nll
from .model import LatentModel, evaluating

LOGVAR_RANGE = (-30.0, 20.0)  # bounds on q*'s log σ² while it is optimised (finite σ, no overflow)


@dataclass(frozen=True)
class ImageGaps:
    """One image's bounds on −log p(x) and the two gaps between them, nats."""

    encoder_neg_elbo: float  # −ELBO with the encoder's q_φ(z|x)
    optimised_neg_elbo: float  # −ELBO with q* fitted to this image (≤ the encoder's)
    iwae: float  # K-sample importance-weighted bound with draws from q*: ≈ −log p(x) from above
    amortization_gap: float  # encoder_neg_elbo − optimised_neg_elbo, ≥ 0
    approximation_gap: float  # optimised_neg_elbo − iwae, ≥ 0 up to Monte Carlo noise
    k: int  # importance samples of the IWAE bound
    steps: int  # Adam steps taken on q*
    q_encoder: DiagonalGaussian  # (1, D) q_φ(z|x)
    q_optimised: DiagonalGaussian  # (1, D) q*


def _neg_elbo(model: LatentModel, x, y, q: DiagonalGaussian, eps: torch.Tensor) -> torch.Tensor:
    """−ELBO of q for one image x (1, C, H, W) on the draws ε (S, D): the reconstruction term
    averaged over z = μ + σ ⊙ ε, plus the KL in closed form. () with gradients to q."""
    z = q.reparameterize(eps)  # (S, D)
    yy = None if y is None else y.expand(len(z))
    rec = recon_nll(x.expand(len(z), *x.shape[1:]), model.decode(z, yy), model.likelihood, model.x_logvar)
    return rec.mean() + q.kl().sum()


def image_gaps(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    k: int = 1000,
    steps: int = 100,
    lr: float = 0.05,
    samples: int = 256,
    seed: int = 0,
) -> ImageGaps:
    """The module's three bounds for x (1, C, H, W) of a one-level VAE. ``samples`` draws of ε
    estimate each ELBO; q* takes ``steps`` Adam steps of 16 draws each; the IWAE bound ``k``."""
    if model.config.arch == "hierarchical":
        raise ValueError("the gaps are measured for one-level VAEs: a hierarchical model has two posteriors.")
    if model.config.autoencoder:
        raise ValueError("an autoencoder has no posterior: the gaps need a VAE.")
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"one image (1, C, H, W) is needed, got shape {tuple(x.shape)}.")
    if not 1 <= k <= 100_000 or not 0 <= steps <= 10_000 or samples < 1:
        raise ValueError("k must be 1 to 100,000, steps 0 to 10,000 and samples at least 1.")
    device = model.x_logvar.device
    x = x.to(device)
    y = None if y is None or not model.config.conditional else y.reshape(1).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with evaluating(model):
        q_enc = model.encode(x, y)
        d = q_enc.mean.shape[1]
        eps_eval = torch.randn(samples, d, generator=gen, device=device)
        mu = q_enc.mean.detach().clone().requires_grad_(True)
        lv = q_enc.logvar.detach().clone().requires_grad_(True)
        start = float(_neg_elbo(model, x, y, q_enc, eps_eval))
        best, best_q = start, (mu.detach().clone(), lv.detach().clone())
        opt = torch.optim.Adam([mu, lv], lr=lr)
        for step in range(1, steps + 1):
            with torch.enable_grad():  # evaluating() turned gradients off for the model's reads
                q = DiagonalGaussian(mu, lv.clamp(*LOGVAR_RANGE))
                loss = _neg_elbo(model, x, y, q, torch.randn(16, d, generator=gen, device=device))
                # Gradients for q* alone: the model's own .grad stays untouched (a run may hold it).
                mu.grad, lv.grad = torch.autograd.grad(loss, [mu, lv])
            opt.step()
            if step % 10 == 0 or step == steps:
                q = DiagonalGaussian(mu, lv.clamp(*LOGVAR_RANGE))
                value = float(_neg_elbo(model, x, y, q, eps_eval))
                if math.isfinite(value) and value < best:
                    best, best_q = value, (mu.detach().clone(), lv.detach().clamp(*LOGVAR_RANGE))
        q_opt = DiagonalGaussian(*best_q)
        iwae = float(iwae_nll(_Fixed(model, q_opt), x, y, k, gen)[0])
    return ImageGaps(
        encoder_neg_elbo=start,
        optimised_neg_elbo=best,
        iwae=iwae,
        amortization_gap=start - best,
        approximation_gap=best - iwae,
        k=k,
        steps=steps,
        q_encoder=DiagonalGaussian(q_enc.mean.cpu(), q_enc.logvar.cpu()),
        q_optimised=DiagonalGaussian(q_opt.mean.cpu(), q_opt.logvar.cpu()),
    )


class _Fixed:
    """The IWAE bound's proposal is a given q (here q*), not the encoder's: the log-weights of
    k draws from it, (k, 1) (loss.ImportanceWeights)."""

    def __init__(self, model: LatentModel, q: DiagonalGaussian) -> None:
        self.model, self.q = model, q

    def log_importance_weights(self, x, y, k, generator=None):
        m = self.model
        return one_level_log_weights(x, y, self.q, m.decode, m.likelihood, m.x_logvar, k, generator)
