"""What a workspace can show of its model (vae_explorer/reads.py): decodes, test images and
their indices by class, the test posteriors and the map computed once per model version, the
nearest test image to a point, and a hash of the weights; every read refuses arguments out of range."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.latent import ProjectionCache
from vae_explorer.model_lock import ModelLock
from vae_explorer.reads import Reads
from vae_explorer.session import Workspace

SMALL = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)


@pytest.fixture
def ws():
    return Workspace.from_shipped("digits-2d", device=torch.device("cpu"))


def test_projection_is_cached_per_model_version(ws, monkeypatch):
    from vae_explorer import reads

    calls = []
    real = reads.project

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(reads, "project", counting)
    p1, y1 = ws.projection("identity", 100)
    p2, _ = ws.projection("identity", 100)
    assert p1 is p2 and len(calls) == 1 and p1.coords.shape == (100, 2) and len(y1) == 100
    ws.reset(SMALL, TrainConfig(epochs=1, batch_size=64), "digits")
    ws.projection("identity", 100)
    assert len(calls) == 2


class _Reader(Reads):
    """Reads on its own: the attributes a Workspace provides, and nothing else."""

    def __init__(self, model, data) -> None:
        self.model, self.data = model, data
        self.guard = ModelLock()
        self.version = 0
        self.projections = ProjectionCache(size=2)
        self._posteriors = None


@pytest.fixture
def reader() -> _Reader:
    data = load_dataset("digits")  # 360 test images, 35 to 37 of each class
    return _Reader(build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32), seed=0), data)


def test_test_index_counts_within_a_class_and_refuses_k_out_of_range(reader):
    threes = reader.class_indices(3)
    assert len(threes) == 37 and all(int(reader.data.y_test[i]) == 3 for i in threes)
    assert threes == sorted(threes) and threes[0] == 2  # the test set's third image is its first 3
    assert reader.test_index(3, 0) == threes[0] and reader.test_index(3, 36) == threes[36]
    with pytest.raises(ValueError, match=r"the test set has only 37 images of class 3\."):
        reader.test_index(3, 37)
    with pytest.raises(ValueError, match=r"the test set has only 37 images of class 3\."):
        reader.test_index(3, -1)
    with pytest.raises(ValueError, match=r"the test set has only 5 images of class 3\."):
        reader.test_index(3, 5, limit=5)  # only the first ``limit`` count


def test_test_image_and_decode_refuse_what_is_not_there(reader):
    x, label, mu = reader.test_image(2)
    assert x.shape == (1, 1, 8, 8) and label == 3 and mu.shape == (2,)
    for bad in (-1, 360):
        with pytest.raises(ValueError, match=r"the test set has images 0 to 359\."):
            reader.test_image(bad)
    assert reader.decode(np.zeros(2)).shape == (1, 1, 8, 8)  # one point (D,) is a batch of one
    with pytest.raises(ValueError, match=r"z must have 2 numbers per point, got shape \(1, 3\)"):
        reader.decode(np.zeros((1, 3)))


def test_test_posteriors_are_computed_once_per_version(reader):
    a = reader.test_posteriors(100)
    assert reader.test_posteriors(100) is a and a.q.mean.shape == (100, 2) and len(a.labels) == 100
    assert reader.test_posteriors(50) is not a  # another n: computed again
    reader.version += 1
    b = reader.test_posteriors(50)
    assert b.version == 1 and reader.test_posteriors(50) is b
    assert reader.test_posteriors(10**6).q.mean.shape == (360, 2)  # at most the whole test set


def test_nearest_test_image_finds_an_image_from_its_own_mean(reader):
    _, _, mu = reader.test_image(17)
    assert reader.nearest_test_image(mu, n=100) == 17
    with pytest.raises(ValueError, match=r"z must be 2 finite numbers"):
        reader.nearest_test_image(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"z must be 2 finite numbers"):
        reader.nearest_test_image(np.zeros(3))


def test_the_weights_hash_names_the_weights(reader):
    first = reader.weights_hash()
    assert first == reader.weights_hash() and len(first) == 64
    twin = _Reader(build_model(reader.model.config, seed=0), reader.data)
    assert twin.weights_hash() == first  # the same weights hash the same in another reader
    with torch.no_grad():
        reader.model.decoder[-1].bias[0] += 1e-3
    assert reader.weights_hash() != first


def test_label_information_needs_labels(reader):
    info = reader.label_information(200)
    assert len(info.mi_per_dim) == 2
    reader.data = dataclasses.replace(reader.data, has_labels=False)
    with pytest.raises(ValueError, match=r"digits has no labels to measure against"):
        reader.label_information()
