"""Generation: prior samples, reconstructions, interpolation, traversal, and image grids.

Images come back as float tensors (N, C, H, W) in [0, 1] (the likelihood's mean); ``to_grid``
turns them into one uint8 array a UI or a PNG file can show.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from .model import LatentModel, evaluating

MAX_IMAGES = 4096  # more decodes than this in one call is a mistake, not a request


def _check_count(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_IMAGES}, got {n!r}.")
    return n


def _labels(model: LatentModel, label: int | None, n: int) -> torch.Tensor | None:
    if not model.config.conditional:
        if label is not None:
            raise ValueError("this model is not conditional, so it takes no class label.")
        return None
    if label is None:
        # No label asked for: cycle through the classes so every one is shown.
        return torch.arange(n) % model.config.num_classes
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < model.config.num_classes:
        raise ValueError(f"the label must be a class number from 0 to {model.config.num_classes - 1}.")
    return torch.full((n,), label, dtype=torch.long)


@torch.no_grad()
def decode_z(model: LatentModel, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """z (N, D) → images (N, C, H, W) in [0, 1], in eval mode."""
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"z must have shape (N, {model.latent_dim}), got {tuple(z.shape)}.")
    if not torch.isfinite(z).all():
        raise ValueError("z must be finite numbers.")
    device = model.x_logvar.device
    yy = None if y is None else torch.as_tensor(y).to(device)
    with evaluating(model):
        return model.mean_image(model.decode(z.to(device), yy)).cpu()


def sample_prior(
    model: LatentModel, n: int = 64, temperature: float = 1.0, seed: int = 0, label: int | None = None
) -> torch.Tensor:
    """n decodes of z ~ N(0, temperature² I). Same seed, same images."""
    _check_count(n)
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and 0 <= temperature <= 10):
        raise ValueError(f"temperature must be a number from 0 to 10, got {temperature!r}.")
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((n, model.latent_dim), generator=gen) * float(temperature)
    return decode_z(model, z, _labels(model, label, n))


@torch.no_grad()
def reconstruct(
    model: LatentModel, x: torch.Tensor, y: torch.Tensor | None = None, seed: int | None = None
) -> torch.Tensor:
    """Reconstructions of x (N, C, H, W) through the posterior means, or a sample when seeded."""
    if not model.config.conditional:
        y = None
    device = model.x_logvar.device
    yy = None if y is None else y.to(device)
    gen = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    with evaluating(model):
        return model.mean_image(model.reconstruct(x.to(device), yy, gen)).cpu()


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): follows the great
    circle, so the norm stays typical of N(0, I) instead of shrinking mid-way.
    z0, z1 (D,), t (K,) → (K, D). Falls back to linear for (anti)parallel endpoints."""
    n0, n1 = z0.norm(), z1.norm()
    if n0 == 0 or n1 == 0:
        return torch.lerp(z0, z1, t[:, None])
    cos = torch.clamp(torch.dot(z0 / n0, z1 / n1), -1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    if so.abs() < 1e-3:  # float32: cos of antiparallel vectors rounds to −0.9999999, not −1
        return torch.lerp(z0, z1, t[:, None])
    w0 = torch.sin((1 - t) * omega) / so
    w1 = torch.sin(t * omega) / so
    return w0[:, None] * z0 + w1[:, None] * z1


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: str = "linear") -> torch.Tensor:
    """``steps`` points from z0 to z1 (both included). (D,), (D,) → (steps, D)."""
    _check_count(steps, "steps")
    return path(z0, z1, torch.linspace(0.0, 1.0, steps), method)


def path(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, method: str = "linear") -> torch.Tensor:
    """The points at fractions t (K,) ∈ [0, 1] of the way from z0 to z1, linear or slerp.
    (D,), (D,) → (K, D)."""
    z0, z1 = torch.as_tensor(z0, dtype=torch.float32), torch.as_tensor(z1, dtype=torch.float32)
    if z0.shape != z1.shape or z0.dim() != 1:
        raise ValueError("both endpoints must be latent vectors of the same size.")
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
    if method == "linear":
        return torch.lerp(z0, z1, t[:, None])
    if method == "slerp":
        return slerp(z0, z1, t)
    raise ValueError(f"interpolation must be linear or slerp, got {method!r}.")


def path_labels(
    label_a: int | None, label_b: int | None, t: torch.Tensor, num_classes: int, blend: bool
) -> int | torch.Tensor | None:
    """What a conditional model decodes a path with: A's label held, or (``blend``) soft labels
    that move from A's one-hot to B's along t, (K, num_classes). None when there is no label."""
    if label_a is None:
        return None
    if not blend or label_b is None or label_a == label_b:
        return label_a
    eye = torch.eye(num_classes)
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1)
    return (1 - t) * eye[label_a] + t * eye[label_b]


def traverse(z: torch.Tensor, dim: int, lo: float = -3.0, hi: float = 3.0, steps: int = 9) -> torch.Tensor:
    """Vary one dimension of z over [lo, hi], holding the others. (D,) → (steps, D)."""
    _check_count(steps, "steps")
    z = torch.as_tensor(z, dtype=torch.float32)
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < z.numel():
        raise ValueError(f"dimension must be from 0 to {z.numel() - 1}, got {dim!r}.")
    if not (math.isfinite(lo) and math.isfinite(hi)) or abs(lo) > 100 or abs(hi) > 100:
        raise ValueError("the traversal range must be finite numbers within ±100.")
    out = z.repeat(steps, 1)
    out[:, dim] = torch.linspace(lo, hi, steps)
    return out


def to_grid(images: torch.Tensor, nrow: int = 8, padding: int = 1) -> np.ndarray:
    """(N, C, H, W) in [0, 1] → one uint8 image (H', W') for grey or (H', W', 3) for colour."""
    from torchvision.utils import make_grid  # imported here: it costs ~2 s of start-up

    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)  # (3, H', W')
    arr = (grid.mul(255).round().to(torch.uint8)).permute(1, 2, 0).numpy()
    return arr[..., 0] if images.shape[1] == 1 else arr


def sprite_sheet(images: torch.Tensor, cols: int = 50) -> np.ndarray:
    """(N, C, H, W) in [0, 1] → one uint8 sheet of the N images, row-major, ``cols`` per row and
    no gaps, so image i sits at ((i // cols)·H, (i % cols)·W): the map's hover thumbnails.
    (rows·H, cols·W) for grey, (rows·H, cols·W, 3) for colour; unused tiles are black."""
    n, c, h, w = images.shape
    if n == 0 or cols < 1:
        raise ValueError("a sprite sheet needs at least one image and one column.")
    rows = -(-n // cols)
    sheet = torch.zeros((rows * cols, c, h, w))
    sheet[:n] = images.clamp(0, 1)
    sheet = sheet.reshape(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    arr = sheet.mul(255).round().to(torch.uint8).numpy()
    return arr[..., 0] if c == 1 else arr


def save_png(array: np.ndarray, path: str | os.PathLike, scale: int = 1) -> None:
    """Write a uint8 image array as PNG, enlarged ``scale`` times with crisp (nearest) pixels."""
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path, format="PNG")


def class_grid(
    model: LatentModel,
    per_class: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    classes: list[int] | None = None,
) -> torch.Tensor:
    """Conditional models: one row per class, one column per z — the same z down each column,
    so the label changes the content while z holds the style. (rows·per_class, C, H, W)."""
    if not model.config.conditional:
        raise ValueError("class rows need a conditional model.")
    _check_count(per_class, "per_class")
    classes = list(range(model.config.num_classes)) if classes is None else classes
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((per_class, model.latent_dim), generator=gen) * float(temperature)  # (K, D)
    zz = z.repeat(len(classes), 1)  # (rows·K, D), row-major: class r, column k
    y = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class)
    return decode_z(model, zz, y)
