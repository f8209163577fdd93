"""A user's image, made to look like the data set; bad files get a clear ValueError."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vae_explorer.images import load_image

SHAPE = (1, 8, 8)


def _png(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_a_dark_digit_on_white_paper_is_inverted_and_fitted():
    im = Image.new("L", (40, 80), 255)  # tall white page
    im.paste(0, (10, 10, 30, 70))  # a dark vertical stroke, half the page wide
    x = load_image(_png(im), SHAPE)
    assert x.shape == (1, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    col = x[0, 0].mean(dim=0)
    assert col[3:5].mean() > 0.5 > col[0]  # the stroke is now light, in the middle, on dark


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("RGBA", (30, 30), (0, 0, 0, 0)),
        lambda: Image.new("P", (30, 30), 3),
        lambda: Image.new("CMYK", (30, 30), (0, 0, 0, 255)),
        lambda: Image.new("I;16", (30, 30), 4000),
        lambda: Image.new("1", (1, 1), 1),
        lambda: Image.new("L", (1, 3000), 128),
    ],
    ids=["rgba", "palette", "cmyk", "16-bit", "1x1", "1x3000"],
)
def test_odd_modes_and_sizes_are_accepted(make):
    im = make()
    fmt = "JPEG" if im.mode == "CMYK" else "TIFF" if im.mode == "I;16" else "PNG"
    x = load_image(_png(im, fmt), SHAPE)
    assert x.shape == (1, 1, 8, 8) and torch.isfinite(x).all()


def test_an_animated_gif_uses_its_first_frame():
    frames = [Image.new("L", (16, 16), v) for v in (0, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert load_image(buf.getvalue(), SHAPE).max() == 0.0  # black first frame, nothing inverted


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (None, "not an image"),  # a truncated PNG, filled in below
        (b"\x00" * (21 * 2**20), "larger than"),
    ],
    ids=["empty", "text", "truncated", "too many bytes"],
)
def test_bad_files_get_a_clear_error(data, message):
    if data is None:
        data = _png(Image.new("L", (64, 64), 7))[:60]
    with pytest.raises(ValueError, match=message):
        load_image(data, SHAPE)


def test_a_decompression_bomb_is_refused_before_decoding():
    # A PNG header that claims 20,000 × 20,000 pixels, with almost no data behind it.
    small = _png(Image.new("L", (1, 1), 0))
    ihdr = small.index(b"IHDR")
    import struct
    import zlib

    body = struct.pack(">II", 20_000, 20_000) + small[ihdr + 12 : ihdr + 17]
    chunk = b"IHDR" + body
    bomb = (
        small[: ihdr - 4]
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + small[ihdr + 21 :]
    )
    with pytest.raises(ValueError, match="pixels"):
        load_image(bomb, SHAPE)


def test_a_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="could not be read"):
        load_image(str(tmp_path / "nope.png"), SHAPE)


def test_a_colour_data_set_is_refused():
    with pytest.raises(ValueError, match="grey"):
        load_image(_png(Image.new("L", (8, 8))), (3, 8, 8))


def test_grey_levels_are_kept_in_order():
    ramp = Image.fromarray(np.tile(np.linspace(0, 100, 8).astype(np.uint8), (8, 1)))
    x = load_image(_png(ramp), SHAPE)[0, 0, 4]
    assert torch.all(x[1:] >= x[:-1] - 1e-6)


def test_any_decoder_failure_inside_pil_is_a_value_error(monkeypatch):
    def broken(self):
        raise TypeError("'bytes' object cannot be interpreted as an integer")  # seen on a fuzzed TIFF

    from PIL import ImageFile

    data = _png(Image.new("L", (8, 8)))
    monkeypatch.setattr(ImageFile.ImageFile, "load", broken)
    with pytest.raises(ValueError, match="not an image that can be read"):
        load_image(data, SHAPE)


# --------------------------------------------------------------------------------------------
# Drawings from the sketchpad
# --------------------------------------------------------------------------------------------


def _canvas(mode: str = "RGBA", paper=(255, 255, 255, 255), ink=(0, 0, 0, 255), box=(40, 30, 70, 150)):
    """A 200×200 drawing with one thick stroke (a "1") in its upper-left part."""
    from PIL import ImageDraw

    im = Image.new(mode, (200, 200), paper)
    ImageDraw.Draw(im).line(box, fill=ink, width=14)
    return np.asarray(im)


def _centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    img = x[0, 0].double()
    h, w = img.shape
    cy = (img.sum(dim=1) * (torch.arange(h) + 0.5)).sum() / img.sum()
    cx = (img.sum(dim=0) * (torch.arange(w) + 0.5)).sum() / img.sum()
    return float(cy), float(cx)


def test_a_drawn_stroke_lands_centred_in_an_mnist_box():
    from vae_explorer.images import prepare_drawing

    x = prepare_drawing(_canvas(), (1, 28, 28))
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x.max() == 1.0 and x.min() == 0.0
    cy, cx = _centre_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # centred by mass, as MNIST is
    rows = torch.nonzero(x[0, 0].sum(dim=1) > 0).flatten()
    assert rows.max() - rows.min() + 1 == 20  # the stroke's height scaled to MNIST's 20-pixel box
    assert x[0, 0, :4].sum() == 0 and x[0, 0, -4:].sum() == 0


def test_an_eight_by_eight_drawing_fills_the_frame_height_like_the_digits():
    from vae_explorer.images import prepare_drawing

    x = prepare_drawing(_canvas(), (1, 8, 8))
    assert x[0, 0, 0].sum() > 0 and x[0, 0, 7].sum() > 0  # top and bottom rows both have ink
    assert abs(_centre_of_mass(x)[1] - 4) <= 0.75


def test_every_way_of_drawing_gives_the_same_input():
    """Dark on white (opaque), dark on transparent, white on transparent, white on black, and a
    plain grey array all become the same light-on-dark input."""
    from vae_explorer.images import prepare_drawing

    ways = {
        "dark on white": _canvas(),
        "dark on transparent": _canvas(paper=(0, 0, 0, 0)),
        "white on transparent": _canvas(paper=(255, 255, 255, 0), ink=(255, 255, 255, 255)),
        "white on black (RGB)": _canvas("RGB", paper=(0, 0, 0), ink=(255, 255, 255)),
        "grey, floats": _canvas("L", paper=255, ink=0).astype(np.float64) / 255.0,
    }
    ref = prepare_drawing(ways.pop("dark on white"), (1, 28, 28))
    for name, arr in ways.items():
        torch.testing.assert_close(prepare_drawing(arr, (1, 28, 28)), ref, atol=0.02, rtol=0, msg=name)


@pytest.mark.parametrize(
    "array",
    [
        np.full((200, 200, 4), 255, dtype=np.uint8),  # a white page
        np.zeros((200, 200, 4), dtype=np.uint8),  # nothing drawn on a transparent canvas
        np.zeros((50, 50), dtype=np.uint8),  # an all-black grey page
        np.full((200, 200, 3), 250, dtype=np.uint8),  # faint paper texture only
    ],
    ids=["white", "transparent", "black", "faint"],
)
def test_an_empty_drawing_asks_for_a_drawing(array):
    from vae_explorer.images import prepare_drawing

    with pytest.raises(ValueError, match="draw something first"):
        prepare_drawing(array, (1, 28, 28))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 4, 5)), "must be an image"),
        (np.zeros(10), "must be an image"),
        (np.array([["a"]]), "array of pixel values"),
        (np.full((8, 8), np.nan), "finite"),
        (np.zeros((0, 5)), "pixels"),
    ],
)
def test_bad_drawings_get_a_clear_error(array, message):
    from vae_explorer.images import prepare_drawing

    with pytest.raises(ValueError, match=message):
        prepare_drawing(array, (1, 28, 28))
