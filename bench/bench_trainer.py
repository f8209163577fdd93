"""Seconds per epoch: the project's Trainer against a plain PyTorch loop, side by side.

Both train the canonical 784-400-20 MLP VAE (Bernoulli likelihood, Adam 1e-3, batch 128) on the
same in-memory tensors (Fashion-MNIST when installed, else the 8×8 digits). This machine's speed
drifts by tens of percent within a minute, so the two are interleaved in chunks of a few steps
(trainer, plain, trainer, plain, ...) and each side's step times are summed: drift then hits
both alike. The Trainer is measured through its public generator, records included; the test
evaluation after each epoch is timed separately. Also measured: the Trainer with clipping off.

    python bench/bench_trainer.py [--epochs 3] [--chunk 10] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.records import StepRecord
from vae_explorer.trainer import Trainer


def plain_steps(model, opt, x: torch.Tensor, batch_size: int, gen: torch.Generator) -> Iterator[None]:
    """The pytorch/examples VAE loop over in-memory tensors (loss per image, no clipping);
    yields after each step so that it can be interleaved."""
    model.train()
    while True:
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            xb = x[perm[i : i + batch_size]]
            q = model.encode(xb)
            mu, logvar = q.mean, q.logvar
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = model.decode(z)
            bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kld) / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            yield


class Timed:
    """Steps of one training loop, timed one call at a time."""

    def __init__(self, steps: Iterator) -> None:
        self.steps = steps
        self.step_seconds = 0.0  # time of calls that produced a training step
        self.other_seconds = 0.0  # time of calls that produced anything else (evaluation)
        self.n = 0

    def run(self, k: int) -> None:
        done = 0
        while done < k:
            t0 = time.perf_counter()
            rec = next(self.steps)
            dt = time.perf_counter() - t0
            if rec is None or isinstance(rec, StepRecord):
                self.step_seconds += dt
                self.n += 1
                done += 1
            else:
                self.other_seconds += dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--chunk", type=int, default=10, help="steps per turn")
    p.add_argument("--dataset", default=None, help="default: fashion-mnist if installed, else digits")
    args = p.parse_args()
    threads = configure_threads()
    try:
        data = load_dataset(args.dataset or "fashion-mnist", download=False)
    except ValueError:
        if args.dataset:
            raise
        data = load_dataset("digits")
    mcfg = ModelConfig(input_shape=data.image_shape, latent_dim=20, hidden_dim=400)
    tcfg = TrainConfig(epochs=args.epochs + 1, batch_size=128, lr=1e-3)
    noclip_cfg = TrainConfig(**{**tcfg.to_dict(), "grad_clip": 0.0})
    gen = torch.Generator().manual_seed(0)
    plain_model = build_model(mcfg, seed=0)
    sides = {
        "plain PyTorch loop  ": Timed(
            plain_steps(plain_model, torch.optim.Adam(plain_model.parameters(), 1e-3), data.x_train, 128, gen)
        ),
        "vae_explorer.Trainer": Timed(Trainer(build_model(mcfg, seed=0), data, tcfg).run()),
        "Trainer, clip off   ": Timed(Trainer(build_model(mcfg, seed=0), data, noclip_cfg).run()),
    }
    steps_per_epoch = -(-len(data.x_train) // 128)
    for side in sides.values():  # warm-up: allocator, kernels; not counted
        side.run(args.chunk)
        side.step_seconds = side.other_seconds = 0.0
        side.n = 0
    total = steps_per_epoch * args.epochs
    while min(s.n for s in sides.values()) < total:
        for side in sides.values():
            side.run(min(args.chunk, total - side.n))
    n = len(data.x_train)
    print(
        f"data set {data.name}: {n} training images {data.image_shape}, batch 128, MLP "
        f"{mcfg.input_dim}-400-20, torch {torch.__version__}, {threads} threads, "
        f"{args.epochs} epochs each, interleaved {args.chunk} steps at a time"
    )
    plain = sides["plain PyTorch loop  "].step_seconds / args.epochs
    for name, side in sides.items():
        per_epoch = side.step_seconds / args.epochs
        extra = (
            f"   (+ {side.other_seconds / args.epochs:.3f} s test evaluation)" if side.other_seconds else ""
        )
        print(
            f"{name}: {per_epoch:.3f} s/epoch ({n / per_epoch:,.0f} img/s)   "
            f"ratio {per_epoch / plain:.3f}{extra}"
        )
    print("goal: Trainer / plain <= 1.05 (gradient clipping on, as by default)")


if __name__ == "__main__":
    main()
