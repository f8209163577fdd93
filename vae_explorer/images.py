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


# --------------------------------------------------------------------------------------------
# A drawing from the app's sketchpad
# --------------------------------------------------------------------------------------------

INK = 0.1  # a pixel with at least this much ink belongs to the drawing's bounding box
MNIST_BOX = 20 / 28  # MNIST: each digit scaled into 20×20, centred by mass in 28×28 (LeCun et al.)


def ink_box(height: int, width: int) -> tuple[int, int]:
    """The box a drawing's ink is scaled into, as the data set's images were made: MNIST-like
    sets (28×28) 20×20; small images such as the 8×8 digits, whose digits fill the frame's
    height, the whole frame."""
    if max(height, width) >= 16:
        return max(1, round(height * MNIST_BOX)), max(1, round(width * MNIST_BOX))
    return height, width


def drawing_ink(array: np.ndarray) -> np.ndarray:
    """A drawing (H, W) grey, (H, W, 1|3) or (H, W, 2|4) with alpha, uint8 or float in [0, 1]
    → its ink (H, W) float64 in [0, 1], 1 = stroke. With transparency the strokes are the
    opaque part, whatever their colour: composited onto white (dark strokes) or onto black
    (light strokes). Opaque drawings are inverted when their paper (the median) is light."""
    a = np.asarray(array)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError("a drawing must be an array of pixel values.")
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        channels = a.shape[2]
    elif a.ndim == 2:
        a, channels = a[:, :, None], 1
    else:
        raise ValueError(f"a drawing must be an image (height, width[, channels]), got shape {a.shape}.")
    h, w = a.shape[:2]
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise ValueError(f"the drawing is {w}×{h} pixels; at most {MAX_PIXELS:,} pixels are accepted.")
    if np.issubdtype(a.dtype, np.integer):
        f = a.astype(np.float64) / (255.0 if a.dtype == np.uint8 or a.max() <= 255 else 65535.0)
    else:
        f = a.astype(np.float64)
        if not np.isfinite(f).all():
            raise ValueError("a drawing's pixels must be finite numbers.")
        if f.max() > 1.0:
            f = f / 255.0  # floats on the 0–255 scale
    f = np.clip(f, 0.0, 1.0)
    colour = f[:, :, : 3 if channels >= 3 else 1]
    grey = colour @ np.array([0.299, 0.587, 0.114]) if colour.shape[2] == 3 else colour[:, :, 0]
    if channels in (2, 4) and f[:, :, -1].min() < 0.999:
        alpha = f[:, :, -1]
        covered = alpha.sum()
        if covered == 0:
            return np.zeros((h, w))
        if (grey * alpha).sum() / covered > 0.5:  # light strokes: on black, they are the ink
            return grey * alpha
        return 1.0 - (grey * alpha + (1.0 - alpha))  # dark strokes on white paper, inverted
    return 1.0 - grey if np.median(grey) > 0.5 else grey


def prepare_drawing(array: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """A drawing → (1, C, H, W) float32 in [0, 1], made like the data set's images:
    its ink (``drawing_ink``: light strokes on dark) is cropped to its bounding box, scaled
    keeping its aspect ratio into ``ink_box`` (20×20 for 28×28 images, the whole frame for 8×8),
    averaging the pixels each output pixel covers (as the 8×8 digits were made from 32×32
    bitmaps), placed so that its centre of mass is the frame's centre (as far as the box stays
    inside the frame), and scaled so that its strongest pixel is 1."""
    c, h, w = shape
    if c != 1:
        raise ValueError("only grey-scale data sets can encode a drawing.")
    ink = drawing_ink(array)  # (H0, W0)
    ink[ink < INK / 2] = 0.0  # faint paper texture and antialiasing fringes are not ink
    rows, cols = np.nonzero(ink >= INK)
    if len(rows) == 0:
        raise ValueError("the drawing is empty: draw something first.")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    bh, bw = ink_box(h, w)
    scale = min(bh / crop.shape[0], bw / crop.shape[1])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))  # (width, height)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    patch = np.asarray(Image.fromarray(crop).resize(size, resample), dtype=np.float64)
    patch = np.clip(patch, 0.0, None)  # (ph, pw)
    ph, pw = patch.shape
    mass = patch.sum()
    if mass <= 0:
        raise ValueError("the drawing is empty: draw something first.")
    # Centre of mass in continuous coordinates (pixel i spans [i, i + 1]); the frame's is (h/2, w/2).
    cy = (patch.sum(axis=1) * (np.arange(ph) + 0.5)).sum() / mass
    cx = (patch.sum(axis=0) * (np.arange(pw) + 0.5)).sum() / mass
    top = int(np.clip(round(h / 2 - cy), 0, h - ph))
    left = int(np.clip(round(w / 2 - cx), 0, w - pw))
    frame = np.zeros((h, w))
    frame[top : top + ph, left : left + pw] = patch
    frame /= frame.max()
    return torch.from_numpy(frame.astype(np.float32)).reshape(1, 1, h, w)
