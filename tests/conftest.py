"""Shared fixtures: tiny seeded configs and data so that core tests run in seconds."""

from __future__ import annotations

import os

import pytest
import torch

from vae_explorer.config import ModelConfig
from vae_explorer.data import ImageDataset

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(min(2, torch.get_num_threads()))


def make_dataset(
    n_train: int = 64, n_test: int = 32, shape=(1, 8, 8), classes: int = 3, seed: int = 0, name: str = "fake"
) -> ImageDataset:
    """Random images in [0, 1] with labels; the same seed gives the same data."""
    g = torch.Generator().manual_seed(seed)
    x_tr = torch.rand((n_train, *shape), generator=g)
    x_te = torch.rand((n_test, *shape), generator=g)
    y_tr = torch.randint(0, classes, (n_train,), generator=g)
    y_te = torch.randint(0, classes, (n_test,), generator=g)
    return ImageDataset(name, x_tr, y_tr, x_te, y_te, [str(i) for i in range(classes)])


@pytest.fixture
def tiny_data() -> ImageDataset:
    return make_dataset()


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, num_classes=3)
