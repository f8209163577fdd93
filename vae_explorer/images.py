"""A user's own image, made to look like the data set: grey, the data set's size, light on dark.

Untrusted files are opened defensively: a byte limit, an allow-list of formats, the pixel count
checked from the header *before* decoding (decompression bombs), the first frame only.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

MAX_BYTES = 20 * 2**20  # 20 MB
MAX_PIXELS = 40_000_000  # checked before decoding: a 100 KB PNG can claim 100,000 × 100,000 pixels
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]


def _open(source: str | os.PathLike | bytes) -> Image.Image:
    if isinstance(source, bytes):
        data = source
    else:
        try:
            if os.path.getsize(source) > MAX_BYTES:
                raise ValueError(f"the image file is larger than {MAX_BYTES // 2**20} MB.")
            with open(source, "rb") as f:
                data = f.read()
        except OSError as err:
            raise ValueError(f"the image could not be read ({err.strerror or err}).") from None
    if len(data) == 0:
        raise ValueError("the image file is empty.")
    if len(data) > MAX_BYTES:
        raise ValueError(f"the image file is larger than {MAX_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
            w, h = im.size
            if w < 1 or h < 1 or w * h > MAX_PIXELS:
                raise ValueError(f"the image is {w}×{h} pixels; at most {MAX_PIXELS:,} pixels are accepted.")
            im.seek(0)  # animated GIF/WebP, multi-page TIFF: the first frame
            im.load()
    except ValueError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"the image has too many pixels; at most {MAX_PIXELS:,} are accepted.") from None
    except Exception as err:
        raise ValueError(
            f"this file is not an image that can be read ({type(err).__name__}); "
            "use PNG, JPEG, GIF, BMP, WebP or TIFF."
        ) from None
    return im


def _to_grey(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)  # a drawing on a transparent canvas: paper is white
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return Image.fromarray((arr * 255).round().astype(np.uint8), mode="L")
    if im.mode == "CMYK":
        im = im.convert("RGB")
    return im.convert("L")


def load_image(source: str | os.PathLike | bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """An image file → (1, C, H, W) float32 in [0, 1], prepared like the data set:

    grey; fitted into H×W keeping its aspect ratio (padded with the background); inverted when
    it is mostly light, because the built-in data sets are light strokes on a dark background.
    """
    c, h, w = shape
    if c != 1:
        raise ValueError("only grey-scale data sets can encode an uploaded image.")
    im = _open(source)
    try:
        grey = _to_grey(im)
    except Exception:
        raise ValueError(f"this image's colour mode ({im.mode}) cannot be converted to grey.") from None
    arr = np.asarray(grey, dtype=np.float32) / 255.0
    if arr.mean() > 0.5:
        grey = ImageOps.invert(grey)
    # Fit inside h×w keeping the aspect ratio (at least one pixel each way), centred on black.
    scale = min(w / grey.width, h / grey.height)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    fitted = Image.new("L", (w, h), 0)
    fitted.paste(grey.resize(size, Image.Resampling.LANCZOS), ((w - size[0]) // 2, (h - size[1]) // 2))
    x = torch.from_numpy(np.asarray(fitted, dtype=np.float32) / 255.0)
    return x.clamp(0, 1).reshape(1, 1, h, w)
