"""The in-memory data set type (vae_explorer/dataset.py): ImageDataset's shape and class
properties, the registry's re-export of it, and binarize, the fresh Bernoulli draw of a batch."""

from __future__ import annotations

import torch

from vae_explorer import data, dataset
from vae_explorer.dataset import ImageDataset, binarize


def test_image_shape_and_num_classes_come_from_the_tensors_and_the_names():
    x_train = torch.zeros((5, 3, 4, 6))
    ds = ImageDataset(
        "toy", x_train, torch.zeros(5, dtype=torch.long), torch.zeros((2, 3, 4, 6)),
        torch.zeros(2, dtype=torch.long), ["cat", "dog", "bird", "fish"],
    )  # fmt: skip
    assert ds.image_shape == (3, 4, 6) and all(type(v) is int for v in ds.image_shape)
    assert ds.num_classes == 4
    assert ds.has_labels  # the default: only an .npz without labels says otherwise
    y = torch.zeros(5, dtype=torch.long)
    unlabelled = ImageDataset("rows", x_train, y, x_train, y, ["all"], has_labels=False)
    assert unlabelled.num_classes == 1 and not unlabelled.has_labels


def test_the_registry_re_exports_the_same_type_and_function():
    # One class, not a copy: isinstance checks against data.ImageDataset must hold for every loader.
    assert data.ImageDataset is dataset.ImageDataset
    assert data.binarize is dataset.binarize
    assert isinstance(data.load_dataset("digits"), ImageDataset)


def test_binarize_of_exact_zeros_and_ones_is_the_identity_and_the_input_is_kept():
    x = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        assert torch.equal(binarize(x, g), x)
    grey = torch.full((2, 1, 2, 2), 0.5)
    binarize(grey, g)
    assert torch.equal(grey, torch.full((2, 1, 2, 2), 0.5))  # a fresh tensor, not in place


def test_binarize_draws_zeros_and_ones_with_mean_x():
    x = torch.linspace(0, 1, 21).reshape(1, 1, 3, 7)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([binarize(x, g) for _ in range(4000)])
    assert draws.shape == (4000, 1, 1, 3, 7) and draws.dtype == torch.float32
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    mean = draws.mean(dim=0)
    # Standard error is at most 0.5 / sqrt(4000) ≈ 0.008; 0.04 is five of them.
    assert torch.allclose(mean, x, atol=0.04)
    assert float(mean.flatten()[0]) == 0.0 and float(mean.flatten()[-1]) == 1.0  # p = 0 and 1 are exact
    a = binarize(x.expand(50, 1, 3, 7), torch.Generator().manual_seed(9))
    b = binarize(x.expand(50, 1, 3, 7), torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert not torch.equal(a, binarize(x.expand(50, 1, 3, 7), torch.Generator().manual_seed(10)))
