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
import zlib
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset, binarize  # noqa: F401 (re-exported: the data API in one place)
from .npz import MNIST10K_FILE, ZIP_ERRORS, load_mnist10k, load_npz  # noqa: F401 (re-exported)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# The four IDX files every MNIST-format data set consists of.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Registry name -> torchvision class name (also its folder under the data root).
TORCHVISION_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
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
