"""Generation (prior samples, interpolation, traversal, grids), the latent-space projections and
their inverse maps, the projection cache, and the aggregate-posterior diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_explorer import diagnostics, generate, latent
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.model import VAE


@pytest.fixture
def model(tiny_config: ModelConfig) -> VAE:
    return build_model(tiny_config, seed=0)


# --------------------------------------------------------------------------------------------
# Prior samples
# --------------------------------------------------------------------------------------------


def test_sample_prior_is_seeded(model: VAE) -> None:
    a = generate.sample_prior(model, n=6, seed=1)
    b = generate.sample_prior(model, n=6, seed=1)
    c = generate.sample_prior(model, n=6, seed=2)
    assert a.shape == (6, 1, 8, 8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert ((a >= 0) & (a <= 1)).all()
    # the images within one call differ (independent z)
    assert not torch.allclose(a[0], a[1])


def test_sample_prior_is_the_decode_of_scaled_normal_z(model: VAE) -> None:
    z = torch.randn((5, model.latent_dim), generator=torch.Generator().manual_seed(7)) * 0.5
    expected = torch.sigmoid(model.decode(z)).detach()
    torch.testing.assert_close(generate.sample_prior(model, n=5, temperature=0.5, seed=7), expected)


def test_temperature_zero_decodes_the_origin(model: VAE) -> None:
    imgs = generate.sample_prior(model, n=5, temperature=0.0, seed=3)
    origin = torch.sigmoid(model.decode(torch.zeros(1, model.latent_dim))).detach()
    # identical up to BLAS rounding (the last row of a batched matmul may take another kernel path)
    for img in imgs:
        torch.testing.assert_close(img, imgs[0], rtol=0, atol=1e-6)
    assert generate.sample_prior(model, n=5, temperature=1.0, seed=3).std(dim=0).max() > 1e-3
    torch.testing.assert_close(imgs[0], origin[0])


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"n": 5000}, {"n": 2.0}, {"temperature": -1.0}, {"temperature": float("nan")}, {"label": 1}],
)
def test_sample_prior_rejects_bad_arguments(model: VAE, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate.sample_prior(model, **kwargs)


def test_sample_prior_conditional_label() -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, conditional=True, num_classes=3)
    cvae = build_model(cfg, seed=0)
    a0 = generate.sample_prior(cvae, n=3, seed=0, label=0)
    a2 = generate.sample_prior(cvae, n=3, seed=0, label=2)
    assert not torch.allclose(a0, a2)
    # no label: the classes cycle 0, 1, 2
    cyc = generate.sample_prior(cvae, n=3, seed=0)
    torch.testing.assert_close(cyc[0], a0[0])
    torch.testing.assert_close(cyc[2], a2[2])
    with pytest.raises(ValueError):
        generate.sample_prior(cvae, n=3, label=3)


def test_decode_z_rejects_bad_z(model: VAE) -> None:
    with pytest.raises(ValueError):
        generate.decode_z(model, torch.zeros(2, model.latent_dim + 1))
    with pytest.raises(ValueError):
        generate.decode_z(model, torch.tensor([[0.0, float("nan"), 0.0]]))


def test_decode_z_restores_training_mode(model: VAE) -> None:
    model.train()
    generate.decode_z(model, torch.zeros(1, model.latent_dim))
    assert model.training


# --------------------------------------------------------------------------------------------
# Interpolation and traversal
# --------------------------------------------------------------------------------------------


def test_slerp_endpoints_exact_and_norm_preserved() -> None:
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(5, generator=g)
    z1 = torch.randn(5, generator=g)
    z1 = z1 * (z0.norm() / z1.norm())  # equal norms
    path = generate.interpolate(z0, z1, steps=9, method="slerp")
    assert path.shape == (9, 5)
    assert torch.equal(path[0], z0)
    assert torch.equal(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.full((9,), z0.norm().item()), rtol=1e-5, atol=1e-5)
    # it follows the great circle: equal angular steps
    cos = (path[:-1] * path[1:]).sum(dim=1) / (path[:-1].norm(dim=1) * path[1:].norm(dim=1))
    torch.testing.assert_close(cos, torch.full_like(cos, cos[0].item()), rtol=1e-5, atol=1e-5)
    # whereas the linear path shrinks mid-way
    lin = generate.interpolate(z0, z1, steps=9, method="linear")
    assert lin[4].norm() < 0.99 * z0.norm()


def test_slerp_parallel_and_zero_endpoints() -> None:
    z0 = torch.tensor([1.0, 2.0, -1.0])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(generate.slerp(z0, 3 * z0, t), torch.lerp(z0, 3 * z0, t[:, None]))
    zero = torch.zeros(3)
    torch.testing.assert_close(generate.slerp(zero, z0, t), torch.lerp(zero, z0, t[:, None]))
    anti = generate.slerp(z0, -z0, t)
    assert torch.isfinite(anti).all()
    assert torch.equal(anti[0], z0) and torch.equal(anti[-1], -z0)


def test_slerp_antiparallel_falls_back_to_linear() -> None:
    z0 = torch.tensor([1.0, 2.0, -1.0])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(generate.slerp(z0, -z0, t), torch.lerp(z0, -z0, t[:, None]))


def test_linear_interpolation_midpoint_is_the_average() -> None:
    z0 = torch.tensor([1.0, -2.0, 0.5])
    z1 = torch.tensor([3.0, 4.0, -1.5])
    path = generate.interpolate(z0, z1, steps=3, method="linear")
    assert torch.equal(path[0], z0) and torch.equal(path[2], z1)
    torch.testing.assert_close(path[1], (z0 + z1) / 2)
    with pytest.raises(ValueError):
        generate.interpolate(z0, z1, method="cubic")
    with pytest.raises(ValueError):
        generate.interpolate(z0, torch.zeros(2))


def test_traverse_changes_only_the_chosen_dim() -> None:
    z = torch.tensor([0.3, -1.2, 2.0, 0.7])
    out = generate.traverse(z, dim=2, lo=-3.0, hi=3.0, steps=7)
    assert out.shape == (7, 4)
    others = [0, 1, 3]
    assert torch.equal(out[:, others], z[others].expand(7, 3))
    torch.testing.assert_close(out[:, 2], torch.linspace(-3, 3, 7))
    assert torch.equal(z, torch.tensor([0.3, -1.2, 2.0, 0.7]))  # input untouched
    for bad in (4, -1, True):
        with pytest.raises(ValueError):
            generate.traverse(z, dim=bad)
    with pytest.raises(ValueError):
        generate.traverse(z, dim=0, lo=float("-inf"))


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def test_to_grid_grey() -> None:
    imgs = torch.zeros((5, 1, 8, 8))
    imgs[1] = 1.0
    imgs[2] = 0.5
    grid = generate.to_grid(imgs, nrow=3, padding=1)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1)
    assert grid[1, 1] == 0 and grid[1, 10] == 255 and grid[1, 19] == 128  # image 0, 1, 2
    assert grid[0, 0] == 255  # padding is white


def test_to_grid_colour_and_clamping() -> None:
    imgs = torch.full((2, 3, 4, 4), 2.0)
    imgs[:, 0] = -1.0
    grid = generate.to_grid(imgs, nrow=2, padding=0)
    assert grid.dtype == np.uint8 and grid.shape == (4, 8, 3)
    assert (grid[..., 0] == 0).all() and (grid[..., 1:] == 255).all()


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
    with pytest.raises(ValueError):
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
    with pytest.raises(ValueError):
        proj.to_latent(np.array([bad]))


def test_project_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        latent.project(np.zeros((0, 3)), "pca")
    with pytest.raises(ValueError):
        latent.project(_codes(d=3), "umap")
    with pytest.raises(ValueError):
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


# --------------------------------------------------------------------------------------------
# Diagnostics
# --------------------------------------------------------------------------------------------


def test_prior_gap_zero_for_the_prior_itself() -> None:
    gap = diagnostics.aggregate_prior_gap(torch.zeros(100, 3), torch.zeros(100, 3))
    assert gap == pytest.approx(0.0, abs=1e-12)


def test_prior_gap_small_when_moments_match() -> None:
    n, d = 20_000, 3
    g = torch.Generator().manual_seed(0)
    mu = math.sqrt(0.5) * torch.randn((n, d), generator=g)  # Cov(mu) = 0.5 I
    logvar = torch.full((n, d), math.log(0.5))  # E[σ²] = 0.5: total covariance I
    gap = diagnostics.aggregate_prior_gap(mu, logvar)
    assert 0.0 <= gap < 2e-3  # sampling error only: O(d² / n)


def test_prior_gap_closed_form_for_shifted_and_shrunk_codes() -> None:
    n, d = 20_000, 2
    g = torch.Generator().manual_seed(1)
    mu = 3.0 + 0.1 * torch.randn((n, d), generator=g)
    logvar = torch.full((n, d), math.log(0.01))
    gap = diagnostics.aggregate_prior_gap(mu, logvar)
    # KL(N(3·1, 0.02 I) || N(0, I)) = ½ (d·0.02 + 9d − d − d·log 0.02)
    expected = 0.5 * (d * 0.02 + 9 * d - d - d * math.log(0.02))
    assert gap == pytest.approx(expected, rel=0.01)
    assert gap > 10


def test_active_units_threshold() -> None:
    n = 100
    s = torch.tensor([1.0, -1.0]).repeat(n // 2)  # mean 0, unbiased variance n/(n−1)
    scale2 = torch.tensor([0.0, 0.0098, 0.0102, 0.5, 4.0])  # variances ×100/99: .0099 and .0103
    mu = s[:, None] * scale2.sqrt()[None, :] + 7.0
    act = diagnostics.activity(mu)
    torch.testing.assert_close(act, scale2 * n / (n - 1), rtol=1e-4, atol=1e-6)
    assert diagnostics.active_units(mu) == 3
    assert diagnostics.active_units(mu, threshold=1.0) == 1
    assert diagnostics.active_units(mu[:1]) == 0  # one image: no variance to speak of


def test_diagnose_flags_collapse_and_prior_holes() -> None:
    collapsed = diagnostics.diagnose(torch.zeros(50, 4), torch.zeros(50, 4), torch.zeros(4))
    assert collapsed.collapsed and collapsed.active_units == 0
    assert collapsed.prior_gap == pytest.approx(0.0, abs=1e-9)
    g = torch.Generator().manual_seed(2)
    mu = 4.0 + 0.3 * torch.randn((200, 2), generator=g)
    holes = diagnostics.diagnose(mu, torch.full((200, 2), -6.0), torch.tensor([3.0, 3.0]))
    assert not holes.collapsed
    assert holes.prior_gap > 0.5 * 2
    assert any("prior" in f for f in holes.findings)


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
