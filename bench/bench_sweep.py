"""A β sweep trained at once against the same models trained one after another, side by side.

Trains K VAEs that differ only in β (the default sweep: 0.1 … 8) on the same data with the same
seed, batches and steps, four ways, alternating rounds, and prints the training seconds of each
(evaluations excluded, the best of --rounds) and their ratio to one after another:

- **stacked**: sweep.BetaSweep, the K models as one pass of batched matrix products (stacked.py;
  other architectures than the MLP through torch.func.vmap);
- **one after another**: the project's Trainer once per β (constant β), K runs;
- **one after another, same code**: BetaSweep with one β, K runs (what the stacking alone buys);
- **process pool**: two processes (one thread each), each a BetaSweep over half of the β values.

    python bench/bench_sweep.py [--dataset mnist-10k] [--latent 2] [--hidden 400] [--epochs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.records import EpochRecord
from vae_explorer.sweep import DEFAULT_BETAS, BetaSweep
from vae_explorer.trainer import Trainer


def stacked(cfg, tc, data, betas) -> float:
    return [r.seconds for r in BetaSweep(cfg, tc, data, betas).run()][-1]


def one_by_one_trainer(cfg, tc, data, betas) -> float:
    from vae_explorer.build import build_model

    total = 0.0
    for beta in betas:
        run = TrainConfig(**{**tc.__dict__, "beta": beta, "kl_schedule": "constant"})
        trainer = Trainer(build_model(cfg, tc.seed), data, run)
        total += sum(r.seconds for r in trainer.run() if isinstance(r, EpochRecord))
    return total


def one_by_one_sweep(cfg, tc, data, betas) -> float:
    return sum(stacked(cfg, tc, data, [b]) for b in betas)


def _pool_part(args) -> float:
    cfg, tc, name, betas = args
    torch.set_num_threads(1)
    return stacked(cfg, tc, load_dataset(name), betas)


def pool(cfg, tc, data, betas) -> float:
    """Wall time of two processes, each training half of the models (start-up included, as a
    user would wait for it)."""
    halves = [betas[0::2], betas[1::2]]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as p:
        p.map(_pool_part, [(cfg, tc, data.name, h) for h in halves])
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist-10k")
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-pool", action="store_true")
    a = p.parse_args()
    data = load_dataset(a.dataset)
    cfg = ModelConfig(input_shape=data.image_shape, latent_dim=a.latent, hidden_dim=a.hidden)
    tc = TrainConfig(epochs=a.epochs, batch_size=a.batch_size)
    betas = list(DEFAULT_BETAS)
    ways = {
        "stacked, K at once": stacked,
        "Trainer, one after another": one_by_one_trainer,
        "BetaSweep with one β, one after another": one_by_one_sweep,
    }
    if not a.no_pool:
        ways["process pool of 2 (wall, start-up included)"] = pool
    best = {name: float("inf") for name in ways}
    for _ in range(a.rounds):
        for name, fn in ways.items():
            best[name] = min(best[name], fn(cfg, tc, data, betas))
    base = best["Trainer, one after another"]
    print(
        f"{a.dataset}: K = {len(betas)} MLPs {cfg.input_dim}-{a.hidden}-{a.latent}, {a.epochs} epochs, "
        f"batch {a.batch_size}, {torch.get_num_threads()} threads; training seconds, best of {a.rounds}"
    )
    print(f"{'way':48s} {'seconds':>8s} {'÷ one after another':>20s}")
    for name, s in best.items():
        print(f"{name:48s} {s:8.2f} {s / base:20.2f}")
    print("goal: K at once ÷ one after another <= 0.6")


if __name__ == "__main__":
    main()
