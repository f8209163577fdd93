"""The latent-space maps (vae_explorer/latent.py): PCA, identity and t-SNE projections and
their inverse maps back to z, embedding new points, the projection cache, and the posteriors'
projected covariances, ellipses, prior circle and map extent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_explorer import latent

# --------------------------------------------------------------------------------------------
# Latent projections
# --------------------------------------------------------------------------------------------


def _codes(n: int = 40, d: int = 4, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([3.0, 2.0, 0.5, 0.2, 0.1, 0.05][:d])
    return (torch.randn((n, d), generator=g) * scales + 1.0).numpy()


def test_pca_to_latent_is_an_exact_inverse_on_the_plane() -> None:
    mu = _codes()
    proj = latent.project(mu, "pca")
    assert proj.coords.shape == (40, 2)
    comps, mean = proj.components, proj.mean
    torch.testing.assert_close(
        torch.from_numpy(comps @ comps.T), torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0
    )
    # coords of a data point → z, whose projection is that point again
    for i in (0, 7, 31):
        z = proj.to_latent(proj.coords[i])
        assert z.shape == (1, 4) and z.dtype == np.float32
        back = (z.astype(np.float64) - mean) @ comps.T
        np.testing.assert_allclose(back[0], proj.coords[i], atol=1e-4)
    # and for points between data points too
    pts = np.array([[1.3, -0.7], [0.0, 0.0], [-5.0, 2.5]])
    back = (proj.to_latent(pts).astype(np.float64) - mean) @ comps.T
    np.testing.assert_allclose(back, pts, atol=1e-4)
    # the data point itself is recovered up to its (small) off-plane part
    z0 = proj.to_latent(proj.coords[0])[0]
    off_plane = np.linalg.norm((mu[0] - mean) - ((mu[0] - mean) @ comps.T) @ comps)
    assert np.linalg.norm(z0 - mu[0]) == pytest.approx(off_plane, abs=1e-4)


def test_identity_projection_is_the_identity() -> None:
    mu = _codes(d=2)
    proj = latent.project(mu, "identity")
    np.testing.assert_array_equal(proj.coords, mu)
    pts = np.array([[0.5, -1.25], [3.0, 4.0]])
    np.testing.assert_array_equal(proj.to_latent(pts), pts.astype(np.float32))
    with pytest.raises(
        ValueError, match=r"the identity projection needs a 2-D latent; this one has 3 dimensions"
    ):
        latent.project(_codes(d=3), "identity")


def test_tsne_to_latent_on_an_embedded_point_returns_its_mu() -> None:
    mu = _codes(n=30, d=3)
    proj = latent.project(mu, "tsne", seed=0)
    assert proj.coords.shape == (30, 2) and np.isfinite(proj.coords).all()
    for i in (0, 12, 29):
        np.testing.assert_allclose(proj.to_latent(proj.coords[i])[0], mu[i], rtol=1e-5, atol=1e-5)
    # between points it is a convex combination of neighbours' mu: inside their bounding box
    mid = (proj.coords[0] + proj.coords[1]) / 2
    z = proj.to_latent(mid)[0]
    assert (z >= mu.min(axis=0) - 1e-5).all() and (z <= mu.max(axis=0) + 1e-5).all()


@pytest.mark.parametrize("method", ["identity", "pca"])
@pytest.mark.parametrize("bad", [[float("nan"), 0.0], [0.0, float("inf")], [2e6, 0.0], [0.0, -1e7]])
def test_to_latent_rejects_bad_coordinates(method: str, bad: list[float]) -> None:
    proj = latent.project(_codes(d=2), method)
    with pytest.raises(ValueError, match=r"map coordinates must be finite numbers within ±1e6"):
        proj.to_latent(np.array([bad]))


def test_project_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"projection needs a non-empty \(N, D\) array of latent means"):
        latent.project(np.zeros((0, 3)), "pca")
    with pytest.raises(ValueError, match=r"projection must be one of identity, pca, tsne, got 'umap'"):
        latent.project(_codes(d=3), "umap")
    with pytest.raises(ValueError, match=r"a 1-D latent cannot be projected to a plane"):
        latent.project(_codes(d=1), "pca")


def test_projection_cache_computes_once_per_key() -> None:
    cache = latent.ProjectionCache(size=2)
    calls: list[str] = []
    mu = _codes(d=2)

    def compute(tag: str):
        def f():
            calls.append(tag)
            return latent.project(mu, "identity")

        return f

    p1 = cache.get((1, "identity"), compute("v1"))
    p1b = cache.get((1, "identity"), compute("v1-again"))
    assert p1b is p1 and calls == ["v1"]
    p2 = cache.get((2, "identity"), compute("v2"))  # a new model version misses
    assert p2 is not p1 and calls == ["v1", "v2"]
    # LRU with size 2: touching version 1 keeps it; version 3 evicts version 2
    cache.get((1, "identity"), compute("x"))
    cache.get((3, "identity"), compute("v3"))
    assert calls == ["v1", "v2", "v3"]
    cache.get((1, "identity"), compute("v1-evicted?"))
    assert calls == ["v1", "v2", "v3"]
    cache.get((2, "identity"), compute("v2-recomputed"))
    assert calls[-1] == "v2-recomputed"


def test_embed_places_known_means_where_the_map_has_them() -> None:
    from vae_explorer.latent import embed, project

    g = torch.Generator().manual_seed(0)
    mu = torch.randn((60, 4), generator=g).numpy()
    for method in ("pca", "tsne"):
        proj = project(mu, method, seed=0)
        got = embed(proj, mu[:5])
        assert np.allclose(got, proj.coords[:5], atol=1e-4), method
    ident = project(mu[:, :2], "identity")
    assert np.allclose(embed(ident, mu[:3, :2]), mu[:3, :2])
    # PCA: a new point's coordinates are its projection onto the plane, so mapping back
    # and embedding again is the identity on the plane.
    pca = project(mu, "pca")
    pts = np.array([[0.3, -1.2], [2.0, 0.5]])
    assert np.allclose(embed(pca, pca.to_latent(pts)), pts, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Posteriors on the map: projected covariances and their ellipses
# --------------------------------------------------------------------------------------------


def test_identity_posterior_covariance_is_diag_sigma_squared() -> None:
    proj = latent.project(_codes(d=2), "identity")
    logvar = np.array([[0.0, np.log(4.0)], [np.log(0.25), np.log(0.01)]])
    cov = latent.posterior_covariance_2d(proj, logvar)
    np.testing.assert_allclose(cov, [np.diag([1.0, 4.0]), np.diag([0.25, 0.01])], rtol=1e-12)
    axes = latent.ellipse_axes(cov)
    np.testing.assert_allclose(axes[:, :2], [[2.0, 1.0], [0.5, 0.1]], rtol=1e-12)
    # The major axis of the first lies along z₂ (angle ±90°), of the second along z₁ (0° or 180°).
    assert abs(abs(axes[0, 2]) - math.pi / 2) < 1e-9 and abs(math.sin(axes[1, 2])) < 1e-9


def test_pca_posterior_covariance_matches_projected_samples() -> None:
    """Monte Carlo: draw z ~ N(μ, diag σ²) in 4-D, put the draws through the PCA map, and their
    covariance is the one the function returns (W diag(σ²) Wᵀ, generally rotated)."""
    proj = latent.project(_codes(n=200, d=4), "pca")
    mu = np.array([0.5, -1.0, 2.0, 0.3])
    logvar = np.log(np.array([0.8, 0.05, 1.5, 0.3]) ** 2)
    cov = latent.posterior_covariance_2d(proj, logvar[None])[0]
    rng = np.random.default_rng(0)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((200_000, 4))
    coords = latent.embed(proj, z).astype(np.float64)
    np.testing.assert_allclose(np.cov(coords.T), cov, atol=0.01)
    np.testing.assert_allclose(coords.mean(axis=0), latent.embed(proj, mu[None])[0], atol=0.01)
    # The ellipse's axes are the square roots of the eigenvalues; its angle points along the major axis.
    a, b, angle = latent.ellipse_axes(cov[None])[0]
    direction = np.array([math.cos(angle), math.sin(angle)])
    assert a >= b > 0
    np.testing.assert_allclose(cov @ direction, a**2 * direction, atol=1e-9)
    assert a**2 * b**2 == pytest.approx(np.linalg.det(cov))


def test_posteriors_on_tsne_have_no_ellipse_and_bad_logvars_are_refused() -> None:
    tsne = latent.project(_codes(n=30, d=3), "tsne", seed=0)
    with pytest.raises(ValueError, match="t-SNE"):
        latent.posterior_covariance_2d(tsne, np.zeros((1, 3)))
    pca = latent.project(_codes(d=3), "pca")
    with pytest.raises(ValueError, match="3 numbers per input"):
        latent.posterior_covariance_2d(pca, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        latent.posterior_covariance_2d(pca, np.array([[0.0, np.nan, 0.0]]))


def test_the_prior_is_a_unit_circle_on_identity_and_pca_maps() -> None:
    ident = latent.project(_codes(d=2), "identity")
    np.testing.assert_array_equal(latent.prior_centre(ident), [0.0, 0.0])
    pca = latent.project(_codes(d=4), "pca")
    centre = latent.prior_centre(pca)
    np.testing.assert_allclose(centre, -pca.components @ pca.mean, atol=1e-6)
    # N(0, I) in 4-D seen through the orthonormal map: covariance I₂, circles of radius 1 and 2.
    np.testing.assert_allclose(latent.posterior_covariance_2d(pca, np.zeros((1, 4)))[0], np.eye(2), atol=1e-6)
    assert latent.prior_centre(latent.project(_codes(n=30, d=3), "tsne")) is None


def test_the_map_extent_is_square_and_holds_the_points_and_the_prior() -> None:
    proj = latent.project(_codes(d=2) * [1.0, 0.1] + [5.0, 0.0], "identity")  # wide and far from 0
    x0, x1, y0, y1 = latent.map_extent(proj)
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 <= -2 and y0 <= -2 and y1 >= 2
    assert (proj.coords[:, 0] >= x0).all() and (proj.coords[:, 0] <= x1).all()
    tsne = latent.project(_codes(n=30, d=3), "tsne")
    assert latent.map_extent(tsne) == latent.bounds(tsne.coords)


def test_the_faster_tsne_keeps_neighbours_as_well_as_scikit_learns_defaults() -> None:
    """The map's t-SNE (fewer iterations, a coarser Barnes-Hut angle) must be as faithful as
    scikit-learn's defaults: trustworthiness (each point's 10 nearest neighbours kept) within 0.01,
    on clustered 10-D means like a trained encoder's."""
    from sklearn.manifold import TSNE, trustworthiness

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(10, 10))
    m = (centres[rng.integers(10, size=600)] + rng.normal(size=(600, 10))).astype(np.float32)
    ours = latent.project(m, "tsne").coords
    theirs = TSNE(2, perplexity=30.0, init="pca", random_state=0).fit_transform(m)
    tw_ours, tw_theirs = (trustworthiness(m, c, n_neighbors=10) for c in (ours, theirs))
    assert tw_ours >= tw_theirs - 0.01 and tw_ours > 0.85, (tw_ours, tw_theirs)
