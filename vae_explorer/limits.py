"""Hosted limits: what one user may ask of a shared server (training runs, uploaded data sets),
from environment variables so that a Space can tighten them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

from .config import ModelConfig, TrainConfig
from .dataset import ImageDataset


def _env_int(name: str, default: int, lo: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be a whole number, got {raw!r}.") from None
    if value < lo:
        raise ValueError(f"the environment variable {name} must be at least {lo}, got {value}.")
    return value


_L = TypeVar("_L", "Limits", "UploadLimits")


def _from_env(base: _L, lowest: dict[str, int] | None = None) -> _L:
    """``base`` with each field read from the environment variable its metadata names, if set."""
    lowest = lowest or {}
    values = {
        f.name: _env_int(f.metadata["env"], getattr(base, f.name), lowest.get(f.name, 1))
        for f in fields(base)
    }
    return replace(base, **values)


@dataclass(frozen=True)
class Limits:
    """Hosted limits, from environment variables so a Space can tighten them."""

    # Most epochs one training run may ask for.
    max_epochs: int = field(default=200, metadata={"env": "VAE_EXPLORER_MAX_EPOCHS"})
    # Training images used at most (a prefix of the set).
    max_train_images: int = field(default=60_000, metadata={"env": "VAE_EXPLORER_MAX_TRAIN_IMAGES"})
    # Widest hidden layer a user may build.
    max_hidden: int = field(default=1024, metadata={"env": "VAE_EXPLORER_MAX_HIDDEN"})
    # Largest latent a user may build.
    max_latent: int = field(default=64, metadata={"env": "VAE_EXPLORER_MAX_LATENT"})

    @classmethod
    def from_env(cls) -> Limits:
        """The variables above, else these defaults: a laptop's, or tighter ones on a Hugging
        Face Space (detected by SPACE_ID), where 2 shared vCPUs serve a whole lecture hall."""
        return _from_env(HOSTED if on_space() else cls())

    def check(self, model: ModelConfig, train: TrainConfig) -> None:
        if train.epochs > self.max_epochs:
            raise ValueError(f"at most {self.max_epochs} epochs per run here, got {train.epochs}.")
        self.check_model(model)

    def check_model(self, model: ModelConfig) -> None:
        if model.hidden_dim > self.max_hidden:
            raise ValueError(f"the hidden layer may have at most {self.max_hidden} units here.")
        if model.latent_dim > self.max_latent:
            raise ValueError(f"the latent may have at most {self.max_latent} dimensions here.")
        if model.arch == "hierarchical" and model.bottom_latent_dim > self.max_latent:
            # An uploaded checkpoint is checked here too: the lower level is a latent like the top.
            raise ValueError(f"the lower latent z₁ may have at most {self.max_latent} dimensions here.")


@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded data set (a .zip of images or an .npz) may hold, checked from the zip's
    directory before anything is unpacked (uploads.py)."""

    # Largest upload, as sent (bytes on disk).
    max_upload_bytes: int = field(default=50 * 2**20, metadata={"env": "VAE_EXPLORER_UPLOAD_MAX_BYTES"})
    # Most members (files and folders) in the archive.
    max_files: int = field(default=20_000, metadata={"env": "VAE_EXPLORER_UPLOAD_MAX_FILES"})
    # Most bytes all members may unpack to, together.
    max_total_bytes: int = field(default=500 * 2**20, metadata={"env": "VAE_EXPLORER_UPLOAD_MAX_TOTAL"})
    # Most a member or the whole may expand (unpacked ÷ packed); a zip bomb.
    max_ratio: int = field(default=200, metadata={"env": "VAE_EXPLORER_UPLOAD_MAX_RATIO"})
    # Most pixels one image may have, read from its header.
    max_image_pixels: int = field(default=25_000_000, metadata={"env": "VAE_EXPLORER_UPLOAD_MAX_PIXELS"})
    # Fewest images a data set needs (train and test together).
    min_images: int = field(default=10, metadata={"env": "VAE_EXPLORER_UPLOAD_MIN_IMAGES"})

    @classmethod
    def from_env(cls) -> UploadLimits:
        """The variables above, else these defaults, or tighter ones on a Space (as ``Limits``)."""
        # At least two images: one to train on, one to test.
        return _from_env(HOSTED_UPLOADS if on_space() else cls(), lowest={"min_images": 2})


def limit_data(data: ImageDataset, max_train: int) -> ImageDataset:
    if len(data.x_train) <= max_train:
        return data
    return ImageDataset(
        data.name,
        data.x_train[:max_train],
        data.y_train[:max_train],
        data.x_test,
        data.y_test,
        data.class_names,
        data.has_labels,
    )


def on_space() -> bool:
    """True when running as a Hugging Face Space."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("SYSTEM") == "spaces"


# Defaults on a Space: short runs, at most 20,000 training images (a third of an MNIST epoch).
HOSTED = Limits(max_epochs=30, max_train_images=20_000, max_hidden=512, max_latent=32)
# Uploads on a Space: 20 MB sent, 5,000 files, 200 MB unpacked, 16-megapixel images.
HOSTED_UPLOADS = UploadLimits(
    max_upload_bytes=20 * 2**20, max_files=5_000, max_total_bytes=200 * 2**20, max_image_pixels=16_000_000
)
