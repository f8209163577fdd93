"""Shared fixtures: tiny seeded configs and data so that core tests run in seconds."""

from __future__ import annotations

import os

import pytest
import torch

from vae_explorer.config import ModelConfig
from vae_explorer.data import ImageDataset
from vae_explorer.records import EpochRecord

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


def epoch_record(**fields) -> EpochRecord:
    """An EpochRecord of a healthy 2-D run, with ``fields`` changed (diagnostics, lab, plots)."""
    base = dict(
        epoch=1, step=10, train_loss=26.0, train_recon=25.0, train_kl=1.0, train_neg_elbo=26.0,
        beta=1.0, test_loss=26.0, test_recon=25.0, test_kl=1.0, test_kl_levels=[1.0],
        kl_per_dim=[0.5, 0.5], active_units=2, sharpness=0.5, collapsed=False, prior_gap=0.1,
        seconds=1.0, images_per_s=100.0, skipped_steps=0, mutual_info=0.9, marginal_kl=0.1,
    )  # fmt: skip
    base.update(fields)
    if "test_kl" in fields and "test_kl_levels" not in fields:
        base["test_kl_levels"] = [fields["test_kl"]]
    return EpochRecord(**base)
