"""Test-set evaluation: the sampled-z negative ELBO, its parts, diagnostics, and the IWAE bound."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .diagnostics import Diagnosis, diagnose, sharpness
from .distributions import DiagonalGaussian
from .information import INFO_IMAGES, information_split
from .loss import iwae_nll, recon_nll
from .model import LatentModel, evaluating

SHARPNESS_IMAGES = 512  # reconstructions measured for sharpness (the first of the set)


@dataclass
class EvalResult:
    """Averages over the evaluated images, nats per image."""

    neg_elbo: float  # recon + KL with β = 1 and one sampled z per image (not z = mu)
    recon: float  # E_q[-log p(x|z)], one-sample estimate
    kl: float  # KL(q(z|x) || p(z)), closed form (summed over the levels of a hierarchical model)
    kl_levels: list[float]  # KL of each level, bottom first (one entry for a one-level VAE)
    kl_per_dim: list[float]  # (D,) of the top latent
    active_units: int
    sharpness: float  # edge energy of reconstructions (from the posterior means) / the inputs'
    n: int  # images evaluated
    iwae_nll: float | None  # K-sample importance-weighted -log p(x), when asked for
    # The top latent's KL split (information.py) over the first INFO_IMAGES images; NaN for an
    # autoencoder: I(x; z), what z says about which input it encodes (≤ log N), and KL(q(z) ‖ p(z))
    mutual_info: float
    marginal_kl: float
    diagnosis: Diagnosis

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("diagnosis")
        return d


def encode_all(
    model: LatentModel, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024
) -> DiagonalGaussian:
    """q(z|x) of a whole data set (N, D), on the CPU, computed in eval mode a batch at a time."""
    device = model.x_logvar.device
    parts = []
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            yb = None if y is None else y[i : i + batch_size].to(device)
            parts.append(model.encode(xb, yb).to("cpu"))
    mean, logvar = torch.cat([q.mean for q in parts]), torch.cat([q.logvar for q in parts])
    return DiagonalGaussian(mean, logvar, parts[0].deterministic if parts else False)


@torch.no_grad()
def evaluate(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    batch_size: int = 512,
    seed: int = 0,
    iwae_k: int = 0,
) -> EvalResult:
    """Evaluate on (N, C, H, W) images. z is *sampled* (seeded): decoding z = mu instead would
    understate the loss (by about 10 nats on MNIST), because it skips the posterior's spread."""
    if len(x) == 0:
        raise ValueError("there are no images to evaluate.")
    if iwae_k < 0:
        raise ValueError(f"iwae_k must be 0 (off) or a positive number of samples, got {iwae_k}.")
    if not model.config.conditional:
        y = None
    device = model.x_logvar.device
    gen = torch.Generator(device=device).manual_seed(seed)
    rec_sum = 0.0
    kl_dims_sum = torch.zeros(model.latent_dim, dtype=torch.float64)
    kl_level_sums: list[float] | None = None  # one running sum per level
    iwae_sum = 0.0
    mus, logvars = [], []
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            yb = None if y is None else y[i : i + batch_size].to(device)
            out = model(xb, yb, gen)  # z sampled at every level
            rec_sum += float(recon_nll(xb, out.recon, model.likelihood, model.x_logvar).sum())
            kls = [lv.q.kl(lv.p) for lv in out.levels]  # (B, D_l) each, closed form
            if kl_level_sums is None:
                kl_level_sums = [0.0] * len(kls)
            kl_level_sums = [a + float(b.sum()) for a, b in zip(kl_level_sums, kls, strict=True)]
            if out.levels:  # an autoencoder pays no KL: its per-dimension KL stays 0
                kl_dims_sum += out.q.kl().sum(dim=0).double().cpu()
            if iwae_k:
                iwae_sum += float(iwae_nll(model, xb, yb, iwae_k, gen).sum())
            mus.append(out.q.mean.cpu())
            logvars.append(out.q.logvar.cpu())
        xs = x[:SHARPNESS_IMAGES].to(device)
        ys = None if y is None else y[:SHARPNESS_IMAGES].to(device)
        sharp = sharpness(xs, model.mean_image(model.reconstruct(xs, ys)))
    n = len(x)
    kl_dims = (kl_dims_sum / n).float()
    kl_levels = [v / n for v in kl_level_sums or []]
    diag = diagnose(torch.cat(mus), torch.cat(logvars), kl_dims, kl_levels)
    kl = sum(kl_levels)
    info = math.nan, math.nan
    if kl_levels:  # an autoencoder (no level pays KL) has points for codes: no information split
        q = DiagonalGaussian(torch.cat(mus)[:INFO_IMAGES], torch.cat(logvars)[:INFO_IMAGES])
        split = information_split(q, generator=torch.Generator().manual_seed(seed))
        info = split.mutual_info, split.marginal_kl
    return EvalResult(
        neg_elbo=rec_sum / n + kl,
        recon=rec_sum / n,
        kl=kl,
        kl_levels=kl_levels,
        kl_per_dim=kl_dims.tolist(),
        active_units=diag.active_units,
        sharpness=sharp,
        n=n,
        iwae_nll=iwae_sum / n if iwae_k else None,
        mutual_info=info[0],
        marginal_kl=info[1],
        diagnosis=diag,
    )
