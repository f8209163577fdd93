"""The Latent space tab's posterior views through real gradio_client sessions: q(z|x) on the map,
the reparameterization step by step (/reparameterize) and a drawn input (/encode_drawing)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

from .raw_http import call  # noqa: E402


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _row(table: str, name: str) -> list[float]:
    """The numbers of one row (μ, σ, ε, z) of the view's table."""
    line = next(r for r in table.splitlines() if r.startswith(f"| {name}"))
    return [float(v) for v in re.findall(r"[+-]\d+\.\d+", line)]


def _reparam(client, seed, **kw):
    args = {"method": "identity", "n": 2000, "source": "test image", "cls": "3", "index": 2, "seed": seed}
    value, image, table, seed_out = client.predict(**{**args, **kw}, api_name="/reparameterize")
    return json.loads(value), _image(image), table, seed_out


def _drawing(path, stroke: bool = True) -> dict:
    """An RGBA sketch: a white canvas with a thick dark "1" (or nothing), as the sketchpad sends it."""
    im = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
    if stroke:
        ImageDraw.Draw(im).line((150, 40, 135, 240), fill=(0, 0, 0, 255), width=22)
    im.save(path)
    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}


def test_the_same_seed_gives_the_same_eps_and_image_another_seed_another(url):
    c = _client(url)
    first, image_a, table_a, seed = _reparam(c, 5)
    _, image_b, table_b, _ = _reparam(c, 5)
    _, image_c, table_c, _ = _reparam(c, 6)
    assert seed == 5 and "ε (seed 5)" in table_a
    assert _row(table_a, "ε") == _row(table_b, "ε") and np.array_equal(image_a, image_b)
    assert _row(table_c, "ε") != _row(table_a, "ε") and not np.array_equal(image_c, image_a)
    assert _row(table_c, "μ") == _row(table_a, "μ")  # the same input: only ε changed
    # z = μ + σ ⊙ ε, to the table's three decimals.
    mu, sigma, eps, z = (np.array(_row(table_a, k)) for k in ("μ", "σ", "ε", "**z"))
    np.testing.assert_allclose(z, mu + sigma * eps, atol=2e-3)
    # On the identity map the focus is the latent itself: μ, its 1σ ellipse (σ₁, σ₂ axis-aligned), z.
    focus = first["focus"]
    np.testing.assert_allclose(focus["mu"], mu, atol=1e-3)
    np.testing.assert_allclose(focus["z"], z, atol=1e-3)
    np.testing.assert_allclose(sorted(focus["axes"][:2]), sorted(sigma), atol=1e-3)
    assert len(focus["trail"]) == 5 and first["prior"] == [0.0, 0.0]  # seeds 0 … 4 before seed 5
    assert image_a.shape[1] > 2.5 * image_a.shape[0]  # the input, decode(μ), decode(z) side by side


def test_resample_takes_the_next_seed(url):
    from vae_explorer.session import Workspace
    from vae_explorer.ui import posterior_view

    ws = Workspace.from_shipped()
    args = ("identity", 2000, "test image", "3", 2)
    pressed = posterior_view.on_resample(ws, None, None, *args, 4)
    direct = posterior_view.on_reparameterize(ws, None, None, *args, 5)
    assert pressed[-1] == 5 and pressed[4] == direct[4] and np.array_equal(pressed[3], direct[3])
    assert posterior_view.on_resample(ws, None, None, *args, posterior_view.MAX_SEED)[-1] == 0


def test_the_input_nearest_to_the_last_click(url):
    c = _client(url)
    with pytest.raises(Exception, match="Click a place on the map"):
        _reparam(c, 0, source="nearest to the last click")
    c.predict(x=1.0, y=-0.5, method="identity", n=2000, api_name="/decode_point")
    value, _, table, _ = _reparam(c, 0, source="nearest to the last click")
    assert "nearest to the click" in value["focus"]["title"]
    assert len(_row(table, "μ")) == 2


def test_every_map_point_carries_its_posterior_ellipse_and_tsne_none(url):
    from vae_explorer.session import Workspace

    c = _client(url)
    _, value = c.predict("identity", 2000, api_name="/latent_map")
    shown = json.loads(value)
    ws = Workspace.from_shipped()
    logvar = ws.test_posteriors(2000).q.logvar
    sigma = np.exp(0.5 * logvar.numpy())  # (N, 2)
    axes = np.array(shown["ellipses"])
    assert axes.shape == (len(shown["points"]), 3)
    np.testing.assert_allclose(axes[:, :2], np.sort(sigma, axis=1)[:, ::-1], atol=1e-3)
    assert len(shown["sample"]) == 150 and shown["prior"] == [0.0, 0.0]
    x0, x1, y0, y1 = shown["bounds"]
    assert x1 - x0 == pytest.approx(y1 - y0) and x0 < -2 < 2 < x1 and y0 < -2 < 2 < y1
    _, value = c.predict("tsne", 500, api_name="/latent_map")
    tsne = json.loads(value)
    assert tsne["ellipses"] is None and tsne["prior"] is None and "t-SNE" in tsne["note"]


def test_a_drawn_one_is_encoded_with_a_finite_mu_and_a_reconstruction(url, tmp_path):
    c = _client(url)
    value, pair, text = c.predict(
        method="identity", n=2000, drawing=_drawing(tmp_path / "one.png"), api_name="/encode_drawing"
    )
    focus = json.loads(value)["focus"]
    assert focus["title"] == "your drawing" and all(math.isfinite(v) for v in focus["mu"])
    mu = [float(v) for v in text.split("μ = [")[1].split("]")[0].split(", ")]
    np.testing.assert_allclose(focus["mu"], mu, atol=1e-3)
    assert all(a > 0 for a in focus["axes"][:2])
    both = _image(pair)
    assert both.shape[1] > 1.8 * both.shape[0] and both.std() > 0  # the input and its reconstruction
    # The drawing is the last place for the other views: its nearest test image is a 1.
    value, _, _, _ = _reparam(c, 0, source="nearest to the last click")
    assert "nearest" in value["focus"]["title"]


def test_bad_drawings_and_seeds_get_a_sentence(url, tmp_path):
    c = _client(url)
    for drawing in (_drawing(tmp_path / "blank.png", stroke=False), None):
        with pytest.raises(Exception, match="draw something first"):
            c.predict(method="identity", n=2000, drawing=drawing, api_name="/encode_drawing")
    with pytest.raises(Exception, match="Seed must be a whole number"):
        _reparam(c, 2.5)
    kind, message = call(url, "/reparameterize", ["identity", 2000, "test image", "3", 0, math.nan])
    assert kind == "error" and message.startswith("Seed must be a whole number"), message
    kind, message = call(url, "/reparameterize", ["identity", 2000, "test image", "3", 0, -1])
    assert kind == "error" and "Seed" in message, message
    c.predict("digits-2d", api_name="/load_checkpoint")  # 36 test images of class 3, not 200
    with pytest.raises(Exception, match=r"only \d+ images of class"):
        _reparam(c, 0, index=99, cls="3")
    with pytest.raises(Exception, match="Class must be one of"):
        _reparam(c, 0, cls="eleven")
    assert _reparam(c, 1)[3] == 1  # the session still works


def test_on_a_pca_map_the_posteriors_are_projected_and_the_draws_follow():
    """A 5-D latent: every ellipse is W diag(σ²) Wᵀ on the PCA plane, and the chosen input's z
    lands where the map puts that z."""
    from vae_explorer.config import ModelConfig, TrainConfig
    from vae_explorer.latent import ellipse_axes, embed, posterior_covariance_2d
    from vae_explorer.session import Workspace
    from vae_explorer.ui import posterior_view

    ws = Workspace.from_shipped()
    ws.reset(ModelConfig(input_shape=(1, 8, 8), latent_dim=5, hidden_dim=32), TrainConfig(), "digits")
    _, _, value, _, table, _ = posterior_view.on_reparameterize(
        ws, None, None, "pca", 300, "test image", "7", 1, 3
    )
    shown = json.loads(value)
    proj, _ = ws.projection("pca", 300)
    logvar = ws.test_posteriors(300).q.logvar
    expected = ellipse_axes(posterior_covariance_2d(proj, logvar))
    np.testing.assert_allclose(np.array(shown["ellipses"]), expected, atol=1e-4)
    d = ws.reparameterize(ws.class_indices(7)[1], 3, 0)
    np.testing.assert_allclose(shown["focus"]["z"], embed(proj, d.z.numpy()[None])[0], atol=1e-4)
    assert len(_row(table, "ε")) == 5


def test_the_true_posterior_lies_under_the_chosen_inputs_ellipse(url):
    """For the shipped 2-D model on the identity map, the focus input's p(z|x) comes with the map:
    bands of its 50/90/99% regions on a grid over the visible plane and over the inset, the
    encoder's μ inside its 99% region, and log p(x) by the grid."""
    c = _client(url)
    value, *_ = _reparam(c, 0)
    truth, bounds = value["focus"]["truth"], value["bounds"]
    assert "true posterior p(z|x)" in value["note"]
    main, inset = truth["main"], truth["inset"]
    np.testing.assert_allclose(main["b"], bounds, atol=1e-4)
    for layer in (main, inset):
        assert len(layer["bands"]) == layer["n"] and {len(r) for r in layer["bands"]} == {layer["n"]}
        cells = "".join(layer["bands"])
        assert set(cells) <= set("0123") and "3" in cells and "0" in cells
    mu = value["focus"]["mu"]
    x0, x1, y0, y1 = inset["b"]
    j, i = (int((mu[0] - x0) / (x1 - x0) * inset["n"]), int((mu[1] - y0) / (y1 - y0) * inset["n"]))
    assert inset["bands"][i][j] != "0"  # a trained encoder puts μ inside p(z|x)'s 99% region
    assert -1000 < truth["log_px"] < 0
    # On a PCA map (not the latent itself) no grid is drawn.
    pca, *_ = _reparam(c, 0, method="pca")
    assert pca["focus"]["truth"] is None
