"""A whole data set in memory: :class:`ImageDataset`, the one type every loader returns
(data.py is the registry that picks the loader), and the binarisation training may apply."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The name of a data set a user uploaded starts so: it lives in their session alone (uploads.py).
UPLOADED = "upload:"


@dataclass
class ImageDataset:
    """A whole data set in memory."""

    name: str  # registry name, e.g. "digits" or "npz:/path/to/file.npz"
    x_train: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (M, C, H, W) float32 in [0, 1]
    y_test: torch.Tensor  # (M,) int64
    class_names: list[str]  # index = label
    has_labels: bool = True  # False for an npz without labels (all labels are 0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh binary draw x_b ~ Bernoulli(x), the convention of the likelihood literature."""
    return torch.bernoulli(x, generator=generator)
