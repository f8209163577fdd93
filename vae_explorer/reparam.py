"""The reparameterization trick, one draw at a time, for showing it step by step.

The encoder gives q(z|x) = N(μ, diag σ²). Sampling z from it directly puts a random node on the
path from the loss to the weights, and there is no derivative through "draw a sample". Writing

    z = μ + σ ⊙ ε,   ε ~ N(0, I)

moves the randomness into an input ε: ∂z/∂μ = 1 and ∂z/∂σ = ε are ordinary derivatives, so the
gradient flows through z to the encoder (Kingma & Welling 2014, §2.4). ``draw`` makes one such
draw with an explicit seed — the same seed gives the same ε — and decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .generate import decode_z
from .model import LatentModel, evaluating

MAX_SEED = 2**63 - 1
MAX_TRAIL = 64


@dataclass
class ReparamDraw:
    """One input's posterior and one reparameterized draw from it (all on the CPU)."""

    seed: int  # the seed of this draw's ε
    mu: torch.Tensor  # (D,) posterior mean
    logvar: torch.Tensor  # (D,) posterior log-variance, as the encoder gives it
    sigma: torch.Tensor  # (D,) exp(½ log σ²); 0 for an autoencoder, whose code is a point
    eps: torch.Tensor  # (D,) ε ~ N(0, I), drawn from torch.Generator().manual_seed(seed)
    z: torch.Tensor  # (D,) exactly mu + sigma * eps
    image: torch.Tensor  # (C, H, W) in [0, 1]: the decoder's mean image at z
    mean_image: torch.Tensor  # (C, H, W) the decoder's image at z = μ, for comparison
    trail: torch.Tensor  # (K, D) z of the K draws before this one (seeds seed−K … seed−1)


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"the {name} must be a whole number from 0 to {MAX_SEED}, got {seed!r}.")
    return seed


def epsilon(dim: int, seed: int) -> torch.Tensor:
    """ε ~ N(0, I) of size dim (D,) from its own generator: the same seed gives the same ε, and
    the global random state is not touched. It is the ε ``DiagonalGaussian.sample`` draws for
    one input with a generator seeded the same way."""
    gen = torch.Generator().manual_seed(_check_seed(seed))
    return torch.randn((1, dim), generator=gen)[0]


@torch.no_grad()
def draw(
    model: LatentModel, x: torch.Tensor, y: torch.Tensor | None = None, seed: int = 0, trail: int = 0
) -> ReparamDraw:
    """Encode one input x (1, C, H, W) (with its label y (1,) for a conditional model), draw
    z = μ + σ ⊙ ε with ε from ``seed``, and decode it; ``trail`` earlier draws' z come along
    (the seeds just below, so that pressing "resample" with seed + 1 extends the same trail)."""
    _check_seed(seed)
    if isinstance(trail, bool) or not isinstance(trail, int) or not 0 <= trail <= MAX_TRAIL:
        raise ValueError(f"the trail must be a whole number from 0 to {MAX_TRAIL}, got {trail!r}.")
    if x.dim() != 4 or x.shape[0] != 1 or tuple(x.shape[1:]) != tuple(model.config.input_shape):
        shape = ", ".join(map(str, model.config.input_shape))
        raise ValueError(f"one input of shape (1, {shape}) is needed.")
    if not model.config.conditional:
        y = None
    device = model.x_logvar.device
    with evaluating(model):
        q = model.encode(x.to(device), None if y is None else y.to(device))[0].to("cpu")  # (D,)
    eps = epsilon(len(q.mean), seed)
    z = q.reparameterize(eps)  # z = μ + σ ⊙ ε: μ and σ are on the gradient's path, ε is an input
    seeds = range(max(0, seed - trail), seed)
    previous = [q.reparameterize(epsilon(len(q.mean), s)) for s in seeds]
    mu, logvar, sigma = q.mean, q.logvar, q.std
    trail_z = torch.stack(previous) if previous else torch.zeros((0, len(mu)))  # (K, D)
    images = decode_z(model, torch.stack([z, mu]), None if y is None else y.reshape(1).repeat(2))
    return ReparamDraw(seed, mu, logvar, sigma, eps, z, images[0], images[1], trail_z)
