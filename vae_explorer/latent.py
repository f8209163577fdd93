"""The latent space in two dimensions: projections of the posterior means and their maps back.

A projection turns mu (N, D) into 2-D coordinates (N, 2) and can map any 2-D point — one that
was clicked on a plot, on a point or between points — back to a z (D,) the decoder can use:
- ``identity`` (D = 2): the point *is* z.
- ``pca``: z = mean + u·c₁ + v·c₂, exact on the plane of the first two principal components.
- ``tsne``: t-SNE has no inverse, so z is the inverse-distance-weighted mean (Shepard 1968,
  power 2) of the mu of the ``TSNE_NEIGHBOURS`` nearest embedded points; a click on a point
  returns that point's own mu.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PROJECTIONS = ("identity", "pca", "tsne")
TSNE_NEIGHBOURS = 8
# t-SNE's optimisation, chosen by measurement (bench/bench_latent.py): 600 iterations with a
# Barnes-Hut angle of 0.8 map 5,000 20-D means in about 8 s on 2 cores, against 16 s for
# scikit-learn's defaults (1,000, 0.5), as faithfully (trustworthiness 0.9857 against 0.9856).
TSNE_ITERATIONS = 600
TSNE_ANGLE = 0.8
MAX_COORD = 1e6  # clicks farther out than this are not points on any map we draw


@dataclass
class Projection:
    method: str  # "identity" | "pca" | "tsne"
    coords: np.ndarray  # (N, 2) float32: where each mu lands
    mu: np.ndarray = field(repr=False)  # (N, D) the projected means (for the inverse maps)
    mean: np.ndarray | None = None  # (D,) pca only
    components: np.ndarray | None = None  # (2, D) pca only

    def to_latent(self, points: np.ndarray) -> np.ndarray:
        """2-D points (P, 2) → z (P, D). Points must be finite and within ±1e6."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(pts).all() or (np.abs(pts) > MAX_COORD).any():
            raise ValueError("map coordinates must be finite numbers within ±1e6.")
        if self.method == "identity":
            return pts.astype(np.float32)
        if self.method == "pca":
            return (self.mean + pts @ self.components).astype(np.float32)
        k = min(TSNE_NEIGHBOURS, len(self.coords))
        d2 = ((pts[:, None, :] - self.coords[None, :, :].astype(np.float64)) ** 2).sum(-1)  # (P, N)
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]  # (P, k)
        nd2 = np.take_along_axis(d2, nn, axis=1)
        w = 1.0 / np.maximum(nd2, 1e-12)  # 1/d², so an exact hit dominates completely
        w /= w.sum(axis=1, keepdims=True)
        return (w[:, :, None] * self.mu[nn]).sum(axis=1).astype(np.float32)


def project(mu: torch.Tensor | np.ndarray, method: str = "pca", seed: int = 0) -> Projection:
    """Fit a 2-D projection of mu (N, D)."""
    m = np.asarray(mu, dtype=np.float32)
    if m.ndim != 2 or len(m) == 0:
        raise ValueError("projection needs a non-empty (N, D) array of latent means.")
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {method!r}.")
    d = m.shape[1]
    if method == "identity":
        if d != 2:
            raise ValueError(f"the identity projection needs a 2-D latent; this one has {d} dimensions.")
        return Projection("identity", m.copy(), m)
    if d == 1:
        raise ValueError("a 1-D latent cannot be projected to a plane.")
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(m)
        coords = pca.transform(m).astype(np.float32)
        return Projection("pca", coords, m, pca.mean_.astype(np.float64), pca.components_.astype(np.float64))
    from sklearn.manifold import TSNE

    if len(m) < 5:
        raise ValueError("t-SNE needs at least 5 points.")
    perplexity = min(30.0, (len(m) - 1) / 3)
    tsne = TSNE(
        2, perplexity=perplexity, init="pca", random_state=seed, max_iter=TSNE_ITERATIONS, angle=TSNE_ANGLE
    )
    coords = tsne.fit_transform(m)
    return Projection("tsne", coords.astype(np.float32), m)


def default_projection(latent_dim: int) -> str:
    return "identity" if latent_dim == 2 else "pca"


class ProjectionCache:
    """Small LRU of what is derived from one model version — projections keyed by (model version,
    method, points, seed), true-posterior grids by (model version, input, extent); thread-safe.
    A new model version (any optimiser step) misses, so a changed model is never shown stale."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, key: tuple, compute) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: t-SNE takes seconds
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def bounds(coords: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of the points with a relative margin — the visible plane."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def grid_points(extent: tuple[float, float, float, float], n: int) -> np.ndarray:
    """An n×n grid over the extent, rows from top (high y) to bottom — the order of a
    decoded-manifold picture. → (n², 2)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 40:
        raise ValueError(f"the grid size must be a whole number from 2 to 40, got {n!r}.")
    if not all(math.isfinite(v) for v in extent):
        raise ValueError("the grid extent must be finite.")
    xs = np.linspace(extent[0], extent[1], n)
    ys = np.linspace(extent[3], extent[2], n)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def nearest_labels(projection: Projection, labels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The label of the mapped point nearest to each of ``points`` (P, 2) on the map, (P,): the
    class a conditional model decodes a click with — the colour the student sees there."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    d2 = ((pts[:, None, :] - projection.coords[None, :, :].astype(np.float64)) ** 2).sum(-1)  # (P, N)
    return np.asarray(labels)[d2.argmin(axis=1)]


def embed(projection: Projection, mu: np.ndarray) -> np.ndarray:
    """Where new latent means (M, D) land on an existing map → (M, 2). Exact for identity and
    PCA; for t-SNE (which cannot place new points) the inverse-distance-weighted mean of the
    coordinates of the nearest mapped points in latent space."""
    m = np.asarray(mu, dtype=np.float64).reshape(-1, projection.mu.shape[1])
    if projection.method == "identity":
        return m.astype(np.float32)
    if projection.method == "pca":
        return ((m - projection.mean) @ projection.components.T).astype(np.float32)
    k = min(TSNE_NEIGHBOURS, len(projection.mu))
    d2 = ((m[:, None, :] - projection.mu[None, :, :].astype(np.float64)) ** 2).sum(-1)  # (M, N)
    nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
    w = 1.0 / np.maximum(np.take_along_axis(d2, nn, axis=1), 1e-12)
    w /= w.sum(axis=1, keepdims=True)
    return (w[:, :, None] * projection.coords[nn]).sum(axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The posterior q(z|x) = N(μ, diag σ²) on the map
# --------------------------------------------------------------------------------------------


def posterior_covariance_2d(projection: Projection, logvar: torch.Tensor | np.ndarray) -> np.ndarray:
    """Covariance on the map of each posterior N(μ, diag σ²), from its log-variances (M, D) → (M, 2, 2).

    ``identity``: the map is z itself, so diag(σ₁², σ₂²) (axis-aligned ellipses).
    ``pca``: the map is the linear c = W (z − mean) with W the (2, D) principal directions, so the
    projected posterior is N(W (μ − mean), W diag(σ²) Wᵀ), an ellipse that may be rotated.
    ``tsne`` is not a linear map of z: a Gaussian does not stay a Gaussian, and no covariance
    means anything there (ValueError)."""
    lv = np.asarray(logvar, dtype=np.float64)
    d = projection.mu.shape[1]
    if lv.ndim == 1:
        lv = lv[None]
    if lv.ndim != 2 or lv.shape[1] != d:
        raise ValueError(f"log-variances must have {d} numbers per input, got shape {lv.shape}.")
    if not np.isfinite(lv).all():
        raise ValueError("log-variances must be finite numbers.")
    var = np.exp(lv)  # (M, D)
    if projection.method == "identity":
        cov = np.zeros((len(var), 2, 2))
        cov[:, 0, 0], cov[:, 1, 1] = var[:, 0], var[:, 1]
        return cov
    if projection.method == "pca":
        w = projection.components  # (2, D)
        return np.einsum("id,md,jd->mij", w, var, w)  # W diag(σ²) Wᵀ for each input
    raise ValueError(
        "t-SNE is not a linear map of z, so a posterior has no ellipse on it: choose identity or pca."
    )


def ellipse_axes(cov: np.ndarray) -> np.ndarray:
    """(M, 2, 2) covariances → (M, 3): the 1σ semi-axes (major, minor) and the major axis's
    angle in radians, counter-clockwise from the map's x axis (y up). The kσ ellipse has k times
    these semi-axes."""
    c = np.asarray(cov, dtype=np.float64).reshape(-1, 2, 2)
    vals, vecs = np.linalg.eigh(c)  # ascending eigenvalues, (M, 2) and (M, 2, 2)
    major = vecs[:, :, 1]  # (M, 2) the eigenvector of the larger eigenvalue
    angle = np.arctan2(major[:, 1], major[:, 0])
    sd = np.sqrt(np.clip(vals, 0.0, None))
    return np.stack([sd[:, 1], sd[:, 0], angle], axis=1)


def prior_centre(projection: Projection) -> np.ndarray | None:
    """Where the prior N(0, I) is centred on the map (2,), or None on t-SNE. Identity and PCA
    maps are orthonormal, so the prior stays N(centre, I₂) there: its kσ contours are circles
    of radius k in latent units."""
    if projection.method == "tsne":
        return None
    return embed(projection, np.zeros((1, projection.mu.shape[1])))[0].astype(np.float64)


def map_extent(projection: Projection, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The visible plane of a map: the points with a margin. On identity and PCA maps (latent
    units) it also holds the prior's 2σ circle and has equal x and y spans, so that a circle of
    the latent space is drawn as a circle on a square canvas."""
    if projection.method == "tsne":
        return bounds(projection.coords, margin)
    c = prior_centre(projection)
    ring = np.array([c - 2.0, c + 2.0])  # the 2σ circle's bounding box
    x0, x1, y0, y1 = bounds(np.vstack([projection.coords.astype(np.float64), ring]), margin)
    half = max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - half, cx + half, cy - half, cy + half)
