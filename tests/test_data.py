"""The data-set registry (vae_explorer/data.py): names, caching and the data root; scikit-learn's
digits; MNIST-format IDX files through torchvision; and the one .npz test the README cites here.
(Reading .npz files, the embedded mnist-10k included: test_npz.py; ImageDataset and binarize:
test_dataset.py.)"""

from __future__ import annotations

import gzip
import pathlib
import struct

import numpy as np
import pytest
import torch
from torchvision import datasets as tv_datasets

from vae_explorer.data import (
    IDX_FILES,
    ImageDataset,
    _load_digits,
    data_root,
    load_dataset,
    load_npz,
)

FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_classes():
    ds = load_dataset("digits")
    assert isinstance(ds, ImageDataset) and ds.name == "digits" and ds.has_labels
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.y_train.shape == (1437,) and ds.y_test.shape == (360,)
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_test.dtype == torch.int64
    for x in (ds.x_train, ds.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # 0-16 intensities divided by 16
    assert ds.class_names == [str(i) for i in range(10)] and ds.num_classes == 10
    assert ds.image_shape == (1, 8, 8)
    # A stratified split: every digit is in both parts, about a fifth of it in the test part.
    test_counts = torch.bincount(ds.y_test, minlength=10)
    train_counts = torch.bincount(ds.y_train, minlength=10)
    assert (test_counts >= 35).all() and (test_counts <= 37).all()
    assert int((train_counts + test_counts).sum()) == 1797


def test_digits_split_is_deterministic_and_cached():
    a, b = _load_digits(), _load_digits()
    assert a is not b
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert load_dataset("digits") is load_dataset("digits")
    assert torch.equal(load_dataset("digits").x_test, a.x_test)
    # A different seed is a different split (so the equality above is not vacuous).
    assert not torch.equal(_load_digits(seed=1).y_test, a.y_test)


def test_unknown_and_empty_names_are_refused():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar10'; choose one of mnist-10k, digits,"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="a data set name is required"):
        load_dataset("")


# ----------------------------------------------------------------------------- IDX files via torchvision


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def _write_idx(
    folder: pathlib.Path, *, packed: bool, n_train: int = 20, n_test: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """Four small MNIST-format files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    arrays["x_train"][0, 0, :3] = (0, 255, 128)  # make sure both extremes appear
    encoded = (
        _idx_images(arrays["x_train"]),
        _idx_labels(arrays["y_train"]),
        _idx_images(arrays["x_test"]),
        _idx_labels(arrays["y_test"]),
    )
    contents = dict(zip(IDX_FILES, encoded, strict=True))
    folder.mkdir(parents=True, exist_ok=True)
    for fname, data in contents.items():
        if packed:
            (folder / f"{fname}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / fname).write_bytes(data)
    arrays["raw"] = contents
    return arrays


def _assert_matches(ds: ImageDataset, arrays: dict, name: str) -> None:
    assert ds.name == name and ds.has_labels
    assert ds.x_train.shape == (len(arrays["x_train"]), 1, 28, 28)
    assert ds.x_test.shape == (len(arrays["x_test"]), 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    for split in ("train", "test"):
        want_x = torch.from_numpy(arrays[f"x_{split}"]).float().unsqueeze(1) / 255.0
        assert torch.equal(getattr(ds, f"x_{split}"), want_x)
        assert torch.equal(getattr(ds, f"y_{split}"), torch.from_numpy(arrays[f"y_{split}"]).long())
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0


def test_fashion_mnist_from_a_flat_folder_of_gz_files(tmp_path):
    root = tmp_path / "data"
    arrays = _write_idx(root, packed=True, seed=1)
    ds = load_dataset("fashion-mnist", data_dir=root, download=False)
    _assert_matches(ds, arrays, "fashion-mnist")
    assert ds.class_names == FASHION_NAMES == list(tv_datasets.FashionMNIST.classes)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # unpacked, no .part left over
    for fname, data in arrays["raw"].items():
        assert (raw / fname).read_bytes() == data
    assert load_dataset("fashion-mnist", data_dir=root, download=False) is ds


@pytest.mark.parametrize(
    ("name", "folder", "tv_class"),
    [("mnist", "MNIST", tv_datasets.MNIST), ("kmnist", "KMNIST", tv_datasets.KMNIST)],
)
def test_unpacked_files_in_torchvision_layout(name, folder, tv_class, tmp_path):
    root = tmp_path / "root"
    arrays = _write_idx(root / folder / "raw", packed=False, n_train=12, n_test=7, seed=2)
    ds = load_dataset(name, data_dir=root, download=False)
    _assert_matches(ds, arrays, name)
    assert ds.class_names == list(tv_class.classes) and len(ds.class_names) == 10
    assert sorted(p.name for p in (root / folder / "raw").iterdir()) == sorted(IDX_FILES)


def test_gz_files_in_the_class_folder_are_found(tmp_path):
    root = tmp_path / "root"
    arrays = _write_idx(root / "KMNIST", packed=True, seed=3)
    _assert_matches(load_dataset("kmnist", data_dir=root, download=False), arrays, "kmnist")
    assert (root / "KMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_environment_variable_is_the_default_root(tmp_path, monkeypatch):
    env_root = tmp_path / "env-root"
    arrays = _write_idx(env_root, packed=True, seed=4)
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(env_root))
    assert data_root() == env_root
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"  # --data-dir wins over the env
    ds = load_dataset("mnist", download=False)
    _assert_matches(ds, arrays, "mnist")
    assert (env_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    monkeypatch.delenv("VAE_EXPLORER_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "vae_explorer"


def test_cache_is_per_root(tmp_path):
    a = _write_idx(tmp_path / "a", packed=True, seed=5)
    b = _write_idx(tmp_path / "b", packed=True, seed=6)
    ds_a = load_dataset("mnist", data_dir=tmp_path / "a", download=False)
    ds_b = load_dataset("mnist", data_dir=tmp_path / "b", download=False)
    assert ds_a is not ds_b
    _assert_matches(ds_a, a, "mnist")
    _assert_matches(ds_b, b, "mnist")
    assert load_dataset("mnist", data_dir=tmp_path / "a" / ".." / "a", download=False) is ds_a


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_missing_files_without_download_name_folder_and_files(name, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(ValueError, match="downloading is off") as info:
        load_dataset(name, data_dir=root, download=False)
    msg = str(info.value)
    assert str(root) in msg and name in msg
    for fname in IDX_FILES:
        assert fname in msg


def test_incomplete_files_without_download(tmp_path):
    root = tmp_path / "partial"
    _write_idx(root, packed=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="downloading is off"):
        load_dataset("mnist", data_dir=root, download=False)


def test_corrupt_gz_is_a_value_error(tmp_path):
    root = tmp_path / "corrupt"
    _write_idx(root, packed=True)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b definitely not gzip")
    with pytest.raises(ValueError, match="could not unpack the mnist files"):
        load_dataset("mnist", data_dir=root, download=False)
    assert not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_truncated_idx_is_a_value_error(tmp_path):
    raw = tmp_path / "trunc" / "MNIST" / "raw"
    arrays = _write_idx(raw, packed=False)
    full = arrays["raw"]["train-images-idx3-ubyte"]
    (raw / "train-images-idx3-ubyte").write_bytes(full[: 16 + 28 * 28 * 5])  # header says 20 images
    with pytest.raises(ValueError, match="could not get mnist"):
        load_dataset("mnist", data_dir=tmp_path / "trunc", download=False)


# ----------------------------------------------------------------------------- .npz files
# Cited by README.md's Security section at this path; the other .npz tests are in test_npz.py.

_OK = np.zeros((4, 6, 6), dtype=np.uint8)


class _Payload:
    """Unpickling this creates the sentinel file."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


def test_npz_object_array_is_refused_without_unpickling(tmp_path):
    objects = np.empty(4, dtype=object)
    objects[:] = [_Payload(tmp_path / "pwned")] * 4
    path = tmp_path / "objects.npz"
    np.savez(path, x_train=objects, x_test=_OK)  # np.save pickles object arrays by default
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        load_npz(path)
    assert not (tmp_path / "pwned").exists()
    # Positive control: the same file does run the payload when something allows pickles.
    control = tmp_path / "control.npz"
    objects[:] = [_Payload(tmp_path / "control")] * 4
    np.savez(control, x_train=objects, x_test=_OK)
    with np.load(control, allow_pickle=True) as npz:
        npz["x_train"]
    assert (tmp_path / "control").exists()
