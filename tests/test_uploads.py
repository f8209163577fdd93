"""Uploaded data sets (vae_explorer/uploads.py): a .zip of images (class folders, a common top
folder, OS junk, the seeded stratified split, inversion, determinism) and an .npz, and every
crafted or broken upload refused with a ValueError a student can act on, before unpacking."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from vae_explorer.limits import HOSTED_UPLOADS, UploadLimits
from vae_explorer.uploads import UploadedData, read_upload

DEFAULT = UploadLimits()


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    """The laptop defaults, whatever the machine running the tests has set."""
    for var in ("SPACE_ID", "SYSTEM", "VAE_EXPLORER_UPLOAD_MAX_BYTES", "VAE_EXPLORER_UPLOAD_MAX_FILES",
                "VAE_EXPLORER_UPLOAD_MAX_TOTAL", "VAE_EXPLORER_UPLOAD_MAX_RATIO",
                "VAE_EXPLORER_UPLOAD_MAX_PIXELS", "VAE_EXPLORER_UPLOAD_MIN_IMAGES"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)


def _png(kind: str, i: int = 0, dark_on_light: bool = True, side: int = 40) -> bytes:
    """A 40×40 'digit': a horizontal bar (h), a vertical bar (v) or a ring (o), shifted by i."""
    im = Image.new("L", (side, side), 255 if dark_on_light else 0)
    draw, ink, j = ImageDraw.Draw(im), 0 if dark_on_light else 255, i % 5
    if kind == "h":
        draw.line((6, 14 + j, 34, 14 + j), fill=ink, width=4)
    elif kind == "v":
        draw.line((14 + j, 6, 14 + j, 34), fill=ink, width=4)
    else:
        draw.ellipse((8 + j, 8, 30 + j, 32), outline=ink, width=3)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, members, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """members: (name or ZipInfo, bytes) pairs, written in this order."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _images(top: str = "", counts: dict[str, int] | None = None) -> list[tuple[str, bytes]]:
    counts = counts or {"h": 6, "v": 7, "o": 10}
    return [(f"{top}{c}/{i}.png", _png(c, i)) for c, n in counts.items() for i in range(n)]


def _flat(n: int = 12) -> list[tuple[str, bytes]]:
    return [(f"{i:02d}.png", _png("hvo"[i % 3], i)) for i in range(n)]


JUNK = [
    (zipfile.ZipInfo("handwriting/"), b""),
    (zipfile.ZipInfo("handwriting/h/"), b""),
    ("__MACOSX/handwriting/h/._0.png", b"\0\5\26\7 resource fork"),
    ("handwriting/.DS_Store", b"\0\0\0\1Bud1"),
    ("handwriting/v/Thumbs.db", b"\xd0\xcf\x11\xe0"),
    ("handwriting/desktop.ini", b"[.ShellClassInfo]"),
]


def _refused(path: Path, match: str, **kw) -> str:
    with pytest.raises(ValueError, match=match) as err:
        read_upload(path, **kw)
    assert "Traceback" not in str(err.value)
    return str(err.value)


def _extent(x: torch.Tensor) -> tuple[int, int]:
    """(rows, columns) holding ink in one (1, H, W) image."""
    ink = x[0] > 0.3
    return int(ink.any(dim=1).sum()), int(ink.any(dim=0).sum())


def _patch_central(path: Path, member: str, offset: int, value: bytes) -> None:
    """Overwrite bytes of one member's central-directory entry (offset from its signature)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        n = int.from_bytes(raw[at + 28 : at + 30], "little")
        if raw[at + 46 : at + 46 + n].decode() == member:
            raw[at + offset : at + offset + len(value)] = value
            path.write_bytes(bytes(raw))
            return
        at = raw.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in the central directory")


# ----------------------------------------------------------------------------- good zips


@pytest.fixture
def labelled(tmp_path) -> Path:
    return _zip(tmp_path / "handwriting.zip", JUNK + _images("handwriting/"))


def test_a_labelled_zip_gives_folder_classes_and_skips_os_junk(labelled):
    up = read_upload(labelled)
    assert isinstance(up, UploadedData) and up.source == "handwriting.zip"
    assert up.images == 23 and up.classes == ["h", "o", "v"] and up.ignored == len(JUNK)
    ds = up.data
    assert ds.name == "upload:handwriting" and ds.has_labels and ds.class_names == ["h", "o", "v"]
    assert ds.x_train.shape == (23 - 4, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    x = torch.cat([ds.x_train, ds.x_test])
    assert float(x.min()) == 0.0 and torch.allclose(x.amax(dim=(1, 2, 3)), torch.ones(23))


def test_the_split_is_stratified_and_every_label_is_its_folder(labelled):
    ds = read_upload(labelled, size=20).data
    # 20% of 6, 10 and 7 images, rounded, at least one each: h 1, o 2, v 1.
    assert torch.bincount(ds.y_test, minlength=3).tolist() == [1, 2, 1]
    assert torch.bincount(ds.y_train, minlength=3).tolist() == [5, 8, 6]
    assert ds.x_train.shape[2:] == (20, 20)
    for x, y in zip(torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test]), strict=True):
        rows, cols = _extent(x)
        kind = ds.class_names[int(y)]
        assert {"h": cols > 2 * rows, "v": rows > 2 * cols, "o": 0.6 < rows / cols < 1.6}[kind]


def test_an_unlabelled_zip_has_one_class_all(tmp_path):
    up = read_upload(_zip(tmp_path / "doodles.zip", _flat(12)), test_fraction=0.25)
    assert up.classes == [] and up.images == 12 and up.ignored == 0
    assert not up.data.has_labels and up.data.class_names == ["all"]
    assert len(up.data.x_test) == 3 and len(up.data.x_train) == 9
    assert int(up.data.y_train.abs().sum() + up.data.y_test.abs().sum()) == 0


def test_a_zipped_folder_of_loose_images_is_unlabelled(tmp_path):
    members = [(f"scans/{n}", b) for n, b in _flat(10)]
    up = read_upload(_zip(tmp_path / "scans.zip", members))
    assert up.classes == [] and up.images == 10


def test_the_same_seed_gives_the_same_tensors_whatever_the_member_order(tmp_path):
    members = _images("handwriting/")
    a = read_upload(_zip(tmp_path / "a.zip", members), seed=3).data
    b = read_upload(_zip(tmp_path / "b.zip", members[::-1]), seed=3).data
    for t, u in [(a.x_train, b.x_train), (a.y_train, b.y_train), (a.x_test, b.x_test), (a.y_test, b.y_test)]:
        assert torch.equal(t, u)
    c = read_upload(tmp_path / "a.zip", seed=4).data
    assert not torch.equal(a.x_test, c.x_test)  # another seed, another split
    assert sorted(torch.cat([a.x_train, a.x_test]).sum(dim=(1, 2, 3)).tolist()) == pytest.approx(
        sorted(torch.cat([c.x_train, c.x_test]).sum(dim=(1, 2, 3)).tolist())
    )  # the same images, split differently


def test_dark_ink_on_white_becomes_light_ink_on_dark(tmp_path):
    dark = read_upload(_zip(tmp_path / "dark.zip", [(f"{i}.png", _png("v", 2)) for i in range(10)]))
    light = [(f"{i}.png", _png("v", 2, dark_on_light=False)) for i in range(10)]
    light = read_upload(_zip(tmp_path / "light.zip", light))
    x = dark.data.x_train[0, 0]  # (28, 28)
    assert float(x[0].max()) == 0.0 and float(x[:, 0].max()) == 0.0  # the border is background
    assert float(x[14, 13:15].max()) > 0.9 and float(x.mean()) < 0.2  # a light stroke, mostly dark
    assert torch.allclose(x, light.data.x_train[0, 0], atol=0.05)  # as if drawn light on dark


def test_the_data_set_name_is_the_sanitised_stem_unless_given(tmp_path):
    path = _zip(tmp_path / ("my digits (v2)!" + "x" * 50 + ".zip"), _flat(10))
    name = read_upload(path).data.name
    assert name.startswith("upload:my_digits_v2_xxx") and len(name) == len("upload:") + 40
    assert read_upload(path, name="mine").data.name == "mine"


# ----------------------------------------------------------------------------- npz


def _npz(path: Path, labels: bool = True, n: tuple[int, int] = (20, 6), side: int = 8, **arrays) -> Path:
    rng = np.random.default_rng(0)
    base = {
        "x_train": rng.integers(0, 256, (n[0], side, side), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n[1], side, side), dtype=np.uint8),
    }
    if labels:
        base |= {"y_train": np.arange(n[0]) % 3, "y_test": np.arange(n[1]) % 3}
    np.savez(path, **(base | arrays))
    return path


def test_a_labelled_npz_keeps_its_own_image_size(tmp_path):
    up = read_upload(_npz(tmp_path / "mine.npz"), size=28)
    assert up.source == "mine.npz" and up.images == 26 and up.classes == ["0", "1", "2"] and up.ignored == 0
    assert up.data.name == "upload:mine" and up.data.has_labels
    assert up.data.x_train.shape == (20, 1, 8, 8) and up.data.x_test.shape == (6, 1, 8, 8)
    assert float(up.data.x_train.min()) >= 0.0 and float(up.data.x_train.max()) <= 1.0


def test_an_unlabelled_npz(tmp_path):
    up = read_upload(_npz(tmp_path / "faces.npz", labels=False, side=12), name="faces")
    assert up.classes == [] and not up.data.has_labels and up.data.class_names == ["all"]
    assert up.data.name == "faces" and up.data.image_shape == (1, 12, 12)


def _lying_npy_header(path: Path) -> Path:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 28, 28)}
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x_train.npy", header.getvalue() + b"\0" * 100)
        zf.writestr("x_test.npy", header.getvalue() + b"\0" * 100)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: _npz(p, x_test=np.zeros((5, 10, 10), np.uint8), y_test=np.arange(5) % 3),
         r"x_train images are 8×8 but x_test images are 10×10; both splits need images of the same size"),
        (lambda p: _npz(p, y_train=np.zeros(20, int), y_test=np.zeros(6, int)),
         r"bad\.npz is labelled with a single class"),
        (lambda p: _npz(p, labels=False, x_test=np.array([1, "a"], dtype=object)),
         r"x_test\.npy in bad\.npz holds Python objects"),
        (_lying_npy_header, r"x_train\.npy in bad\.npz claims an array of shape \(1000000, 28, 28\)"),
        (lambda p: np.savez_compressed(p, x_train=np.zeros((3000, 28, 28), np.uint8), x_test=np.zeros(1)),
         r"x_train\.npy expands [\d,]+-fold when unpacked \(at most 200-fold"),
        (lambda p: _npz(p, labels=False, n=(5, 2)), r"bad\.npz holds 7 images; at least 10 are needed"),
        (lambda p: _npz(p, labels=False, x_train=np.full((20, 8, 8), 2.0)), r"values must be in \[0, 1\]"),
    ],
    ids=["sizes-differ", "single-class", "pickle", "lying-header", "bomb", "too-few", "out-of-range"],
)  # fmt: skip
def test_bad_npz_uploads_are_refused(tmp_path, make, match):
    path = tmp_path / "bad.npz"
    make(path)
    _refused(path, match)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("member", [True, False], ids=["one-member", "whole-archive"])
def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path, member):
    # Zeros deflate ~1000-fold: one 2 MB member, or three under the 1 MB floor that add up.
    bombs = [("bomb.png", bytes(2 * 2**20))] if member else [(f"z{i}.png", bytes(900_000)) for i in range(3)]
    path = _zip(tmp_path / "bomb.zip", _flat(10) + bombs)
    _refused(path, r"(bomb\.png|bomb\.zip) expands [\d,]+-fold when unpacked \(at most 200-fold.*zip bomb")


def test_more_declared_bytes_than_the_total_limit_are_refused(tmp_path):
    path = _zip(tmp_path / "big.zip", _flat(12))
    _refused(
        path,
        r"big\.zip unpacks to [\d,]+ bytes; at most 1,000 bytes in all",
        limits=UploadLimits(max_total_bytes=1000),
    )


def test_a_member_declaring_more_than_the_image_limit_is_refused(tmp_path):
    path = _zip(tmp_path / "huge.zip", [*_flat(10), ("scan.bmp", b"BM tiny")])
    _patch_central(path, "scan.bmp", 24, (21 * 2**20).to_bytes(4, "little"))  # declares 21 MB
    _refused(path, r"scan\.bmp unpacks to 21\.0 MB; at most 20\.0 MB per file is accepted")


def test_too_many_files_are_refused(tmp_path):
    _refused(
        _zip(tmp_path / "many.zip", _flat(12)),
        r"many\.zip holds 12 files and folders; at most 5 are accepted",
        limits=UploadLimits(max_files=5),
    )


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.png", r"\.\./evil\.png has a '\.\.' in its path, which climbs out"),
        ("h/../../evil.png", r"has a '\.\.' in its path"),
        ("/etc/evil.png", r"/etc/evil\.png has an absolute path"),
        ("C:/evil.png", r"C:/evil\.png has an absolute path"),
        ("h\\..\\..\\evil.png", r"has a backslash in its path"),
    ],
)
def test_paths_that_climb_out_or_are_absolute_are_refused(tmp_path, name, match):
    _refused(_zip(tmp_path / "path.zip", [*_flat(10), (name, _png("h"))]), match)


def test_a_symbolic_link_is_refused(tmp_path):
    link = zipfile.ZipInfo("h/link.png")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    _refused(
        _zip(tmp_path / "link.zip", [*_flat(10), (link, b"/etc/passwd")]), r"h/link\.png is a symbolic link"
    )


def test_a_device_or_fifo_member_is_refused(tmp_path):
    fifo = zipfile.ZipInfo("pipe.png")
    fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
    _refused(_zip(tmp_path / "fifo.zip", [*_flat(10), (fifo, b"")]), r"pipe\.png is not a regular file")


def test_an_encrypted_member_is_refused(tmp_path):
    path = _zip(tmp_path / "secret.zip", _flat(10))
    _patch_central(path, "03.png", 8, b"\x01\x00")  # general-purpose flag bit 0: encrypted
    _refused(path, r"03\.png is encrypted; zip it again without a password")


def test_a_member_that_is_not_an_image_is_refused(tmp_path):
    path = _zip(tmp_path / "notes.zip", [*_flat(10), ("h/notes.txt", b"my homework")])
    _refused(path, r"h/notes\.txt is not an image")


def test_a_member_yielding_more_than_it_declares_is_cut_at_the_cap(tmp_path, monkeypatch):
    path = _zip(tmp_path / "liar.zip", _flat(10))
    declared = zipfile.ZipFile(path).getinfo("04.png").file_size
    asked: list[int] = []

    class Endless(io.RawIOBase):  # a decompressor that would never stop
        def read(self, n=-1):
            asked.append(n)
            return b"\x89PNG" + bytes(max(n, 10**6) - 4)

    real_open = zipfile.ZipFile.open

    def lying_open(self, info, *args, **kwargs):
        name = info.filename if isinstance(info, zipfile.ZipInfo) else info
        return Endless() if name == "04.png" else real_open(self, info, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    _refused(path, rf"04\.png holds more than the {declared:,} bytes its zip entry declares")
    assert asked == [declared + 1]  # read with the cap, never read() to the end


def test_a_declared_size_patched_smaller_is_caught_as_damage(tmp_path):
    path = _zip(tmp_path / "patched.zip", _flat(10), zipfile.ZIP_STORED)
    _patch_central(path, "04.png", 24, (10).to_bytes(4, "little"))  # uncompressed size: 10 bytes
    _refused(path, r"patched\.zip is damaged or is not a \.zip file \(Bad CRC-32")


def test_an_image_with_too_many_pixels_is_refused_from_its_header(tmp_path, monkeypatch):
    big = Image.new("L", (5100, 5000), 0)  # 25.5 megapixels, a few kilobytes as PNG
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    path = _zip(tmp_path / "big.zip", [*_flat(10), ("poster.png", buf.getvalue())])
    _refused(path, r"poster\.png has 25,500,000 pixels; at most 25,000,000 per image")
    monkeypatch.setenv("VAE_EXPLORER_UPLOAD_MAX_PIXELS", "2000")  # the 40×40 images still pass
    _refused(path, r"poster\.png has 25,500,000 pixels; at most 2,000 per image")


def test_a_blank_image_is_refused_by_name(tmp_path):
    blank = io.BytesIO()
    Image.new("L", (30, 30), 255).save(blank, format="PNG")
    _refused(_zip(tmp_path / "b.zip", [*_flat(10), ("05b.png", blank.getvalue())]), r"05b\.png is blank")


def test_an_undecodable_image_is_refused_by_name(tmp_path):
    path = _zip(tmp_path / "bad.zip", [*_flat(10), ("oops.png", b"not really a png")])
    _refused(path, r"oops\.png: this file is not an image that can be read")


def test_images_both_at_the_top_and_in_folders_are_refused(tmp_path):
    path = _zip(tmp_path / "mixed.zip", [*_images(), ("loose.png", _png("h"))])
    _refused(path, r"mixed\.zip has images both in folders and outside them \(e\.g\. loose\.png\)")


def test_images_nested_deeper_than_one_class_folder_are_refused(tmp_path):
    path = _zip(tmp_path / "deep.zip", [*_images("data/"), ("data/h/extra/0.png", _png("h"))])
    _refused(path, r"data/h/extra/0\.png is nested too deeply")


@pytest.mark.parametrize("members", [[], JUNK], ids=["no-members", "only-junk"])
def test_an_archive_without_images_is_refused(tmp_path, members):
    _refused(_zip(tmp_path / "empty.zip", members), r"empty\.zip holds no images")


def test_a_single_class_folder_is_refused(tmp_path):
    path = _zip(tmp_path / "one.zip", _images("handwriting/", {"h": 12}))
    _refused(path, r"one\.zip holds a single class \(h\); put the images in two or more folders, or none")


def test_a_class_with_one_image_is_refused(tmp_path):
    path = _zip(tmp_path / "lonely.zip", _images("", {"h": 1, "v": 11}))
    _refused(path, r"the class h has a single image; each class needs at least 2")


def test_too_few_images_are_refused(tmp_path):
    _refused(_zip(tmp_path / "few.zip", _flat(5)), r"few\.zip holds 5 images; at least 10 are needed")


@pytest.mark.parametrize("damage", ["truncated", "bad-crc"])
def test_a_damaged_zip_is_a_value_error(tmp_path, damage):
    path = _zip(tmp_path / "broken.zip", _flat(10), zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        at = raw.find(b"IDAT") + 8  # inside the first image's pixel data
        raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    _refused(path, r"broken\.zip is damaged or is not a \.zip file")


def test_a_file_too_big_on_disk_is_refused_before_it_is_opened(tmp_path):
    path = tmp_path / "large.zip"
    path.write_bytes(b"not even a zip" * 100)  # the size is checked first, so this never matters
    _refused(
        path,
        r"large\.zip is 1,400 bytes; at most 1,000 bytes may be uploaded",
        limits=UploadLimits(max_upload_bytes=1000),
    )


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "homework.zip"
    path.write_text("Dear teacher, here are my digits.")
    _refused(path, r"homework\.zip is damaged or is not a \.zip file \(File is not a zip file\)")


def test_other_file_types_and_bad_arguments_are_refused(tmp_path):
    (tmp_path / "digits.rar").write_bytes(b"Rar!")
    _refused(tmp_path / "digits.rar", r"digits\.rar is neither a \.zip of images nor an \.npz")
    _refused(tmp_path / "missing.zip", r"the upload missing\.zip could not be read")
    path = _zip(tmp_path / "ok.zip", _flat(10))
    _refused(path, r"the image size must be between 8 and 64 pixels, got 100", size=100)
    _refused(path, r"the test fraction must be between 0 and 1, got 1", test_fraction=1.0)


# ----------------------------------------------------------------------------- limits


def test_upload_limits_come_from_the_environment_with_tighter_defaults_on_a_space(monkeypatch):
    assert UploadLimits.from_env() == DEFAULT and DEFAULT.max_upload_bytes == 50 * 2**20
    monkeypatch.setenv("SPACE_ID", "someone/vae-explorer")
    assert UploadLimits.from_env() == HOSTED_UPLOADS and HOSTED_UPLOADS.max_files == 5000
    monkeypatch.setenv("VAE_EXPLORER_UPLOAD_MAX_FILES", "7")
    assert UploadLimits.from_env().max_files == 7
    assert UploadLimits.from_env().max_total_bytes == HOSTED_UPLOADS.max_total_bytes
    monkeypatch.setenv("VAE_EXPLORER_UPLOAD_MIN_IMAGES", "1")
    with pytest.raises(ValueError, match=r"VAE_EXPLORER_UPLOAD_MIN_IMAGES must be at least 2, got 1"):
        UploadLimits.from_env()


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_bzip2_and_lzma_members_are_refused_unread(tmp_path, method, monkeypatch):
    # Python unpacks these a chunk at a time with no output limit, before any read cap applies.
    path = _zip(tmp_path / "packed.zip", _flat(10), compression=method)
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or 1 / 0)
    _refused(path, r"compressed with bzip2 or LZMA; zip it again with ordinary \(deflate\) zip")
    assert opened == []  # refused from the directory: nothing was decompressed


def test_an_npz_member_not_named_npy_is_refused_before_numpy_reads_it(tmp_path):
    # np.load would read a member "x_train" (no .npy) as an array, whose header could claim 931 GB.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**12,)})
    path = tmp_path / "sly.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train", buf.getvalue() + bytes(1000))
        z.writestr("x_test.npy", bytes(200))
    _refused(path, r"x_train in sly\.npz is not an \.npy array")
