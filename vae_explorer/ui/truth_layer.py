"""The true posterior p(z|x) under the chosen input's ellipse on the latent map.

For a one-level VAE with a 2-D latent on the identity map, the map's JSON carries p(z|x) of the
focus input (true_posterior.py) on two grids — one over the visible plane, one over the magnified
inset around μ — as bands: 3 inside the region holding 50% of the mass, 2 inside 90%, 1 inside
99%, 0 outside. The browser fills each band's cells (latent_map.js), so students see where the
axis-aligned Gaussian q(z|x) misses the posterior's real shape.
"""

from __future__ import annotations

import numpy as np
import torch

from ..true_posterior import PosteriorGrid
from .common import guard

MAIN_RESOLUTION = 96  # cells per side over the visible plane
INSET_RESOLUTION = 64  # cells per side over the inset
INSET_SPAN = 2.6  # the inset shows μ ± this many σ of q, or of p(z|x) when that is wider
NOTE = (
    "Orange: the true posterior p(z|x) ∝ p(x|z) p(z) of the chosen input, computed on a grid — its "
    "50%, 90% and 99% regions, darkest first; the blue ellipses are the encoder's Gaussian q(z|x). "
    "log p(x) ≈ {log_px:.1f} nats by the grid."
)


def shows_truth(ws, method: str) -> bool:
    """The map can carry p(z|x): a one-level VAE with a 2-D latent, drawn on the identity map."""
    cfg = ws.model.config
    return method == "identity" and cfg.latent_dim == 2 and cfg.arch != "hierarchical" and not cfg.autoencoder


def bands(grid: PosteriorGrid) -> list[str]:
    """The grid as rows of band digits, row i at grid.ys[i] (y up), one character per cell."""
    ld = grid.log_density
    band = sum((ld >= t).astype(np.int8) for t in grid.thresholds)  # (R, R) in 0..3
    return ["".join(map(str, row)) for row in band.tolist()]


def _layer(grid: PosteriorGrid) -> dict:
    dx, dy = grid.xs[1] - grid.xs[0], grid.ys[1] - grid.ys[0]
    b = [grid.xs[0] - dx / 2, grid.xs[-1] + dx / 2, grid.ys[0] - dy / 2, grid.ys[-1] + dy / 2]
    return {"b": [round(float(v), 5) for v in b], "n": len(grid.xs), "bands": bands(grid)}


def truth_layer(ws, focus: dict, bounds, mu: np.ndarray, axes: list | None) -> dict | None:
    """The focus input's p(z|x) for the map's JSON (``bounds``: the visible plane; ``mu``, ``axes``:
    q's centre and 1σ semi-axes in map units), or None when the focus has no input to use."""
    if focus.get("x") is None:
        return None
    x = torch.tensor(focus["x"], dtype=torch.float32).reshape(1, *ws.model.config.input_shape)
    label = focus.get("label")
    main = guard(lambda: ws.true_posterior(x, label, tuple(bounds), MAIN_RESOLUTION))
    # The inset holds q's ellipse and p(z|x) (its centre ± 2.6 of its widest σ, from the grid),
    # however much wider or off-centre the true posterior is; never more than the map itself.
    r_q = INSET_SPAN * max(axes[0] if axes else 0.0, axes[1] if axes else 0.0, 1e-6)
    sd = float(np.sqrt(max(np.linalg.eigvalsh(main.cov).max(), 0.0)))
    r_p = float(np.abs(main.mean - mu).max()) + INSET_SPAN * sd
    r = min(max(r_q, r_p), (bounds[1] - bounds[0]) / 2)
    window = (mu[0] - r, mu[0] + r, mu[1] - r, mu[1] + r)
    inset = guard(lambda: ws.true_posterior(x, label, window, INSET_RESOLUTION))
    return {
        "main": _layer(main),
        "inset": _layer(inset),
        "r": round(r, 5),
        "log_px": round(main.log_evidence, 3),
    }
