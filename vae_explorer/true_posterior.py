"""The true posterior of a 2-D latent, on a grid: what the Gaussian q(z|x) approximates.

    p(z|x) = p(x|z) p(z) / p(x),   p(x) = ∫ p(x|z) p(z) dz ≈ Σ_cells p(x|z_c) p(z_c) ΔA

With two latent dimensions the integral is a sum over a fine grid (the decoder runs once per
cell), so the posterior's real shape — tilted, curved, with several modes — can be drawn under
q(z|x)'s axis-aligned ellipse, and log p(x) comes out as a number (exact up to the grid's
resolution and extent, for the mass inside it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .distributions import log_standard_normal
from .loss import recon_nll
from .model import LatentModel, evaluating

MASS_LEVELS = (0.5, 0.9, 0.99)  # the regions drawn: the smallest holding this much of the mass
MAX_CELLS = 300 * 300  # decodes one grid may cost


@dataclass(frozen=True)
class PosteriorGrid:
    """p(z|x) of one input on an R × R grid of cell centres over ``extent``."""

    xs: np.ndarray  # (R,) cell centres along z₁
    ys: np.ndarray  # (R,) cell centres along z₂
    log_density: np.ndarray  # (R, R) log p(z|x) at the centres, row i at ys[i]; normalised on the grid
    log_evidence: float  # log p(x) by the grid sum, nats (a lower bound: mass outside is missed)
    thresholds: list[float]  # log density above which each MASS_LEVELS region lies, in that order
    mean: np.ndarray  # (2,) E[z|x] on the grid
    cov: np.ndarray  # (2, 2) Cov[z|x] on the grid


@torch.no_grad()
def posterior_grid(
    model: LatentModel,
    x: torch.Tensor,
    y: torch.Tensor | None,
    extent: tuple[float, float, float, float],
    resolution: int = 160,
    batch: int = 4096,
) -> PosteriorGrid:
    """p(z|x) for x (1, C, H, W) on a resolution² grid over extent (x0, x1, y0, y1) of z₁, z₂.
    One-level models with a 2-D latent only (the grid is the latent space itself)."""
    if model.config.arch == "hierarchical" or model.latent_dim != 2:
        raise ValueError("the true posterior is drawn for one-level models with a 2-D latent.")
    if model.config.autoencoder:
        raise ValueError("an autoencoder has no posterior: the true posterior needs a VAE.")
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not all(math.isfinite(v) for v in extent) or not (x1 > x0 and y1 > y0):
        raise ValueError("the grid's extent must be finite with x1 > x0 and y1 > y0.")
    if not resolution >= 2 or resolution * resolution > MAX_CELLS:
        raise ValueError(f"the grid's resolution must be 2 to {int(math.sqrt(MAX_CELLS))}.")
    dx, dy = (x1 - x0) / resolution, (y1 - y0) / resolution
    xs = x0 + dx * (np.arange(resolution) + 0.5)
    ys = y0 + dy * (np.arange(resolution) + 0.5)
    gx, gy = np.meshgrid(xs, ys)  # (R, R) each, row i at ys[i]
    z = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1)).float()  # (R², 2)
    device = model.x_logvar.device
    x = x.to(device)
    conditional = model.config.conditional and y is not None
    log_joint = []
    with evaluating(model):
        for i in range(0, len(z), batch):
            zb = z[i : i + batch].to(device)
            yb = y.reshape(1).to(device).expand(len(zb)) if conditional else None
            xb = x.expand(len(zb), *x.shape[1:])
            log_px = -recon_nll(xb, model.decode(zb, yb), model.likelihood, model.x_logvar)
            log_joint.append((log_px + log_standard_normal(zb)).double().cpu())
    lj = torch.cat(log_joint)  # (R²,) log p(x|z) + log p(z)
    log_cell = math.log(dx * dy)
    log_evidence = float(torch.logsumexp(lj, dim=0)) + log_cell
    log_density = (lj - log_evidence).numpy()  # log p(z|x) per unit area
    mass = np.exp(log_density + log_cell)  # (R²,) each cell's probability; sums to 1
    w = torch.from_numpy(mass)
    zd = z.double()
    mean = (w[:, None] * zd).sum(dim=0)
    centred = zd - mean
    cov = (w[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(dim=0)
    order = np.sort(log_density)[::-1]  # densest cells first
    cum = np.cumsum(np.exp(order + log_cell))
    thresholds = [float(order[min(np.searchsorted(cum, level), len(order) - 1)]) for level in MASS_LEVELS]
    return PosteriorGrid(
        xs=xs,
        ys=ys,
        log_density=log_density.reshape(resolution, resolution),
        log_evidence=log_evidence,
        thresholds=thresholds,
        mean=mean.numpy(),
        cov=cov.numpy(),
    )
