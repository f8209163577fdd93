"""A student's own data set, uploaded in the browser: a ``.zip`` of images (one folder per class
gives labels) or an ``.npz`` in the format ``npz.load_npz`` reads.

An upload is untrusted and lands on a shared server, so the zip's directory is checked *before*
a byte is decompressed: the file's size, the number of members, each member's and the total
declared size, the compression ratio (a zip bomb: kilobytes that unpack to gigabytes), paths
that are absolute or climb out with ``..``, symbolic links and other special files, encryption.
Nothing is extracted to disk: members are read into memory with a cap, because a declared size
can lie. Images are opened by ``images._open`` (format allow-list, pixel count from the header
before decoding) and prepared like a drawing from the sketchpad. An .npz is a zip too: the same
checks, plus each array's header against its size (numpy allocates what the header claims),
and never pickle. Every refusal is a ValueError a student can act on.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from .config import MAX_CLASSES
from .dataset import UPLOADED, ImageDataset
from .images import FORMATS, MAX_BYTES, _open, _to_grey, prepare_drawing
from .limits import UploadLimits
from .npz import ZIP_ERRORS, load_npz

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
OS_FILES = {"thumbs.db", "desktop.ini"}  # Windows; macOS adds __MACOSX/ and names starting with "."
SIZES = (8, 64)  # the side of the prepared images, in pixels
# A member, or a whole archive, that unpacks to less than this cannot bomb, whatever its ratio:
# a small blank BMP or TIFF legitimately compresses a hundredfold.
RATIO_FLOOR = 2**20
ZIP_FIX = "zip the folder again and upload the new file"
NPZ_FIX = "save it again with numpy.savez and upload the new file"


class _Refused(ValueError):
    """A refusal whose message is for the student (other ValueErrors mean a damaged file)."""


@dataclass(frozen=True)
class UploadedData:
    """An uploaded data set, read and checked, and what the app shows about it."""

    data: ImageDataset  # a zip: x (N, 1, size, size) float32 in [0, 1]; an npz keeps its own size
    source: str  # the uploaded file's base name, e.g. "handwriting.zip"
    images: int  # images in both splits together
    classes: list[str]  # class names (the zip's folders, the npz's labels); empty when unlabelled
    ignored: int  # members skipped: OS metadata (__MACOSX/, .DS_Store, Thumbs.db) and folder entries
    size: int  # how it was read (read_upload's arguments, so it can be read again the same way):
    seed: int  # the image side, the split's seed
    test_fraction: float  # and the share held out to test


def read_upload(
    path: str | os.PathLike,
    *,
    size: int = 28,
    seed: int = 0,
    test_fraction: float = 0.2,
    limits: UploadLimits | None = None,
    name: str | None = None,
) -> UploadedData:
    """An uploaded ``.zip`` of images (prepared to size×size) or ``.npz`` → a checked data set,
    split ``test_fraction`` to test with ``seed`` (stratified per class); ValueError if refused."""
    limits = limits or UploadLimits.from_env()
    path = Path(path)
    source, suffix = path.name, path.suffix.lower()
    if not SIZES[0] <= size <= SIZES[1]:
        raise ValueError(f"the image size must be between {SIZES[0]} and {SIZES[1]} pixels, got {size}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"the test fraction must be between 0 and 1, got {test_fraction}.")
    if suffix not in (".zip", ".npz"):
        raise ValueError(f"{source} is neither a .zip of images nor an .npz; upload one of those.")
    try:
        on_disk = path.stat().st_size
    except OSError:
        raise ValueError(f"the upload {source} could not be read; upload it again.") from None
    if on_disk > limits.max_upload_bytes:
        raise ValueError(
            f"{source} is {_mb(on_disk)}; at most {_mb(limits.max_upload_bytes)} may be uploaded, "
            "so use fewer or smaller images."
        )
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_")[:40] or "data"
    ds_name = name or f"{UPLOADED}{stem}"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = _check_directory(zf, source, limits, big_npy=suffix == ".npz")
            if suffix == ".npz":
                _check_npy_headers(zf, infos, source)
            else:
                x, classes, labels, ignored = _read_images(zf, infos, source, size, limits)
    except _Refused:
        raise
    except (*ZIP_ERRORS, MemoryError) as err:
        fix = ZIP_FIX if suffix == ".zip" else NPZ_FIX
        raise ValueError(f"{source} is damaged or is not a {suffix} file ({err}); {fix}.") from None
    if suffix == ".zip":
        y = torch.tensor(labels, dtype=torch.int64)  # (N,)
        tr, te = (torch.from_numpy(i) for i in _split(np.asarray(labels), test_fraction, seed))
        data = ImageDataset(ds_name, x[tr], y[tr], x[te], y[te], classes or ["all"], has_labels=bool(classes))
        return UploadedData(data, source, len(y), classes, ignored, size, seed, test_fraction)
    data = load_npz(path, ds_name)  # headers checked: numpy allocates no more than the file holds
    y = torch.cat([data.y_train, data.y_test])  # (N + M,)
    if data.has_labels and len(torch.unique(y)) < 2:
        raise ValueError(f"{source} is labelled with a single class; use two or more labels, or none.")
    _check_count(len(y), source, limits)
    classes = data.class_names if data.has_labels else []
    return UploadedData(data, source, len(y), classes, 0, size, seed, test_fraction)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 // 10 else f"{n:,} bytes"


def _check_directory(
    zf: zipfile.ZipFile, source: str, limits: UploadLimits, big_npy: bool
) -> list[zipfile.ZipInfo]:
    """Every member, checked from the directory alone, before anything is decompressed."""
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise _Refused(
            f"{source} holds {len(infos):,} files and folders; at most {limits.max_files:,} are accepted."
        )
    seen: set[str] = set()
    unpacked = packed = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            raise _Refused(f"{name} has an absolute path; zip a folder with relative paths instead.")
        if "\\" in name:
            raise _Refused(f"{name} has a backslash in its path; {ZIP_FIX} with your system's zip tool.")
        if ".." in name.split("/"):
            raise _Refused(f"{name} has a '..' in its path, which climbs out of the archive; {ZIP_FIX}.")
        if name in seen:
            raise _Refused(f"{name} appears twice in {source}; {ZIP_FIX}.")
        seen.add(name)
        kind = stat.S_IFMT(info.external_attr >> 16)  # unix file type; 0 when the zip tool set none
        if kind == stat.S_IFLNK:
            raise _Refused(f"{name} is a symbolic link; zip the files themselves, not links to them.")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or (kind == stat.S_IFDIR and not info.is_dir()):
            raise _Refused(f"{name} is not a regular file or folder; zip only images.")
        if info.flag_bits & 0x1:
            raise _Refused(f"{name} is encrypted; zip it again without a password.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # bzip2 and LZMA are unpacked a chunk at a time with no output limit: a few KB could
            # fill the memory before the read cap applies. Deflate is what zip tools and numpy use.
            raise _Refused(
                f"{name} is compressed with bzip2 or LZMA; zip it again with ordinary (deflate) zip."
            )
        if big_npy and not info.is_dir() and not name.endswith(".npy"):
            # numpy reads any member as an array: one not named .npy would skip the header check.
            raise _Refused(f"{name} in {source} is not an .npy array; save the file with numpy.savez.")
        cap = limits.max_total_bytes if big_npy and name.endswith(".npy") else MAX_BYTES
        if info.file_size > cap:
            raise _Refused(
                f"{name} unpacks to {_mb(info.file_size)}; at most {_mb(cap)} per file is accepted, "
                "so make it smaller."
            )
        _check_ratio(name, info.file_size, info.compress_size, limits)
        unpacked, packed = unpacked + info.file_size, packed + info.compress_size
    if unpacked > limits.max_total_bytes:
        raise _Refused(
            f"{source} unpacks to {_mb(unpacked)}; at most {_mb(limits.max_total_bytes)} in all is accepted."
        )
    _check_ratio(source, unpacked, packed, limits)
    return infos


def _check_ratio(what: str, unpacked: int, packed: int, limits: UploadLimits) -> None:
    if unpacked > RATIO_FLOOR and unpacked > limits.max_ratio * max(1, packed):
        raise _Refused(
            f"{what} expands {unpacked // max(1, packed):,}-fold when unpacked (at most "
            f"{limits.max_ratio}-fold is accepted), like a zip bomb; save images as PNG or JPEG."
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size (checked against the cap) plus one."""
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise _Refused(
            f"{info.filename} holds more than the {info.file_size:,} bytes its zip entry declares: "
            f"the archive is damaged or crafted; {ZIP_FIX}."
        )
    return data


def _check_npy_headers(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], source: str) -> None:
    """Each array's header against its member: numpy allocates the shape a header claims before
    reading, and a pickled (object) array is refused before ``load_npz`` sees it."""
    shapes = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            continue
        with zf.open(info) as f:
            fmt = np.lib.format
            read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)  # versions 2 and 3 differ only in the header's text encoding
        if dtype.hasobject:
            raise _Refused(f"{info.filename} in {source} holds Python objects; save numeric arrays only.")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise _Refused(
                f"{info.filename} in {source} claims an array of shape {shape}, more than its "
                f"{info.file_size:,} bytes hold: the file is damaged; save it again with numpy.savez."
            )
        shapes[info.filename.removesuffix(".npy")] = shape
    tr, te = shapes.get("x_train"), shapes.get("x_test")
    if tr and te and len(tr) == len(te) and tr[1:] != te[1:]:
        sizes = ["×".join(map(str, s[1:])) for s in (tr, te)]
        raise _Refused(
            f"in {source}, x_train images are {sizes[0]} but x_test images are {sizes[1]}; "
            "both splits need images of the same size."
        )


def _check_count(n: int, source: str, limits: UploadLimits) -> None:
    if n < limits.min_images:
        raise _Refused(f"{source} holds {n} images; at least {limits.min_images} are needed.")


def _is_metadata(parts: list[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].lower() in OS_FILES


def _read_images(
    zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], source: str, size: int, limits: UploadLimits
) -> tuple[torch.Tensor, list[str], list[int], int]:
    """The images (N, 1, size, size) in name order, class names, labels (N,) and members ignored."""
    members: list[tuple[list[str], zipfile.ZipInfo]] = []
    ignored = 0
    for info in sorted(infos, key=lambda i: i.filename):  # the zip's order must not matter
        parts = [p for p in info.filename.split("/") if p not in ("", ".")]
        if info.is_dir() or not parts or _is_metadata(parts):
            ignored += 1
        elif PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
            members.append((parts, info))
        else:
            raise _Refused(
                f"{info.filename} is not an image; the zip may hold only PNG, JPEG, GIF, BMP, WebP or TIFF."
            )
    if not members:
        raise _Refused(f"{source} holds no images; zip a folder of PNG or JPEG files.")
    _check_count(len(members), source, limits)
    classes, labels = _classes(members, source)  # layout checked before any image is decoded
    x = torch.cat([_prepare(zf, info, size, limits) for _, info in members])  # (N, 1, size, size)
    return x, classes, labels, ignored


def _classes(members: list[tuple[list[str], zipfile.ZipInfo]], source: str) -> tuple[list[str], list[int]]:
    """Class names and labels from the folders, after one common top folder (a zipped folder)."""
    paths = [parts for parts, _ in members]
    if len({p[0] for p in paths}) == 1 and all(len(p) > 1 for p in paths):
        paths = [p[1:] for p in paths]
    deep = [info.filename for p, (_, info) in zip(paths, members, strict=True) if len(p) > 2]
    if deep:
        raise _Refused(
            f"{deep[0]} is nested too deeply: put images in one folder per class (a/1.png, b/2.png), "
            "or all of them in no folder."
        )
    depths = {len(p) for p in paths}
    if depths == {1}:
        return [], [0] * len(paths)  # unlabelled
    if depths == {1, 2}:
        loose = next(info.filename for p, (_, info) in zip(paths, members, strict=True) if len(p) == 1)
        raise _Refused(
            f"{source} has images both in folders and outside them (e.g. {loose}); put them all in "
            "class folders, or all in none."
        )
    classes = sorted({p[0] for p in paths})
    if len(classes) == 1:
        raise _Refused(
            f"{source} holds a single class ({classes[0]}); put the images in two or more folders, or none."
        )
    if len(classes) > MAX_CLASSES:
        raise _Refused(f"{source} has {len(classes):,} class folders; at most {MAX_CLASSES} are supported.")
    index = {c: i for i, c in enumerate(classes)}
    labels = [index[p[0]] for p in paths]
    counts = np.bincount(labels, minlength=len(classes))  # (classes,)
    if counts.min() < 2:
        lonely = classes[int(counts.argmin())]
        raise _Refused(f"the class {lonely} has a single image; each class needs at least 2 (one to test).")
    return classes, labels


def _prepare(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, limits: UploadLimits) -> torch.Tensor:
    """One member → (1, 1, size, size) float32 in [0, 1], light strokes on dark, like a drawing."""
    data = _read_member(zf, info)
    pixels = _header_pixels(data)
    if pixels > limits.max_image_pixels:
        raise _Refused(
            f"{info.filename} has {pixels:,} pixels; at most {limits.max_image_pixels:,} per image are "
            "accepted, so make it smaller."
        )
    try:
        im = _open(data)
    except ValueError as err:
        raise _Refused(f"{info.filename}: {err}") from None
    try:
        grey = np.asarray(_to_grey(im))  # (H, W) uint8
    except Exception:
        raise _Refused(f"{info.filename}: its colour mode ({im.mode}) cannot be converted to grey.") from None
    try:
        # drawing_ink inverts it when its paper (the median) is light; then the ink is boxed and centred.
        return prepare_drawing(grey, (1, size, size))
    except ValueError:
        raise _Refused(f"{info.filename} is blank: no strokes were found in it; remove it.") from None


def _header_pixels(data: bytes) -> int:
    """The pixel count an image's header declares, before decoding; 0 when it cannot be read
    (``_open`` then explains why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                return im.width * im.height
    except Exception:
        return 0


def _split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, seeded and stratified: ``test_fraction`` of each class (at least
    one, at most all but one) to test, both shuffled so that classes are mixed."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(idx) - 1, max(1, round(test_fraction * len(idx))))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
