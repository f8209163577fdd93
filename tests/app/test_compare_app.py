"""The AE vs VAE tab through real gradio_client sessions (one Client = one browser session)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")

VIEW = {"seed": 0, "class_a": "3", "class_b": "7"}


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def _traces(plot: dict) -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(plot["plot"])["data"]}


def _span(plot: dict) -> float:
    """Largest |coordinate| of the test codes on a map."""
    return max(
        max(abs(v) for v in t["x"] + t["y"]) for name, t in _traces(plot).items() if name != "z ~ N(0, I)"
    )


def test_the_shipped_pair_side_by_side(url):
    text, ae_map, vae_map, ae_s, vae_s, ae_i, vae_i = _client(url).predict(**VIEW, api_name="/compare")
    assert "shipped mnist-ae-2d and mnist-2d" in text and "aggregate-posterior gap" in text
    assert "52.58 nats" in text and "0.169 nats" in text  # the measured gaps (tests/test_compare.py)
    for plot in (ae_map, vae_map):
        traces = _traces(plot)
        assert set(map(str, range(10))) <= set(traces) and len(traces["z ~ N(0, I)"]["x"]) == 36
        shapes = json.loads(plot["plot"])["layout"]["shapes"]
        assert [s["x1"] - s["x0"] for s in shapes] == [2, 4]  # the prior's 1σ and 2σ circles
    assert _span(ae_map) > 3 * _span(vae_map)  # the AE's codes spread far beyond the prior
    for a, b in ((ae_s, vae_s), (ae_i, vae_i)):
        ga, gb = _image(a), _image(b)
        assert ga.shape == gb.shape and ga.std() > 10 and not np.array_equal(ga, gb)


def test_same_seed_same_samples_and_another_seed_others(url):
    c = _client(url)
    first = c.predict(**VIEW, api_name="/compare")
    again = c.predict(**VIEW, api_name="/compare_view")
    other = c.predict(**{**VIEW, "seed": 1}, api_name="/compare_view")
    assert np.array_equal(_image(first[3]), _image(again[3]))  # the AE's samples, seed 0 twice
    assert not np.array_equal(_image(first[3]), _image(other[3]))
    assert first[0] == again[0] and "seed 1" in other[0]


def test_training_both_now_streams_and_keeps_the_workspace_model(url):
    c, other = _client(url), _client(url)
    other.predict(**VIEW, api_name="/compare")
    before = c.predict(api_name="/model_info")
    job = c.submit(latent_dim=2, epochs=3, train_seed=1, **VIEW, api_name="/compare_train")
    final = job.result(timeout=600)
    updates = [u[0] for u in job.outputs()]
    assert any("Training the autoencoder" in u for u in updates if isinstance(u, str))
    assert final[0].startswith("**Trained now: latent 2, hidden 400, 3 epochs, seed 1**")
    assert "Trained now" in c.predict(**VIEW, api_name="/compare_view")[0]  # kept in this session
    assert "shipped" in other.predict(**VIEW, api_name="/compare_view")[0]  # not in another
    after = c.predict(api_name="/model_info")  # the Train tab's model is untouched
    assert after["weights_sha256"] == before["weights_sha256"] and after["epoch"] == before["epoch"]


def test_a_pca_pair_trains_with_an_8d_latent(url):
    final = _client(url).submit(latent_dim=8, epochs=1, train_seed=0, **VIEW, api_name="/compare_train")
    text, ae_map = final.result(timeout=600)[:2]
    assert "latent 8" in text and "PCA plane" in json.loads(ae_map["plot"])["layout"]["title"]["text"]


@pytest.mark.parametrize(
    "api, kwargs, message",
    [
        ("/compare", {**VIEW, "class_a": "11"}, "11 is not in the list of choices"),
        ("/compare_view", {**VIEW, "seed": -1}, "Sample seed"),
        ("/compare_train", {"latent_dim": 2, "epochs": 0, "train_seed": 0, **VIEW}, "Epochs"),
        ("/compare_train", {"latent_dim": 64, "epochs": 1, "train_seed": 0, **VIEW}, "64 is not in the list"),
        ("/compare_train", {"latent_dim": 2, "epochs": 1.5, "train_seed": 0, **VIEW}, "whole number"),
    ],
)
def test_bad_inputs_end_in_a_sentence(url, api, kwargs, message):
    with pytest.raises(Exception, match=message):
        _client(url).predict(**kwargs, api_name=api)
