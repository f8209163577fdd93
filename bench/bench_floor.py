"""An epoch against this machine's FLOP floor: how close training comes to the matrix products.

The floor of an epoch is the multiply-adds of its matrix products (forward, and the backward
pass's two products per layer but the first layer's input gradient) at this machine's fp32 GEMM
rate, measured on a large square product with the threads training uses. Printed per setting:
seconds per epoch (the Trainer's steps, evaluation excluded, best of --epochs), the floor, and
epoch ÷ floor. Settings that do not change the maths: Adam's fused kernel (``fused=True``);
batch sizes are shown too (they change the optimisation, so they are not a default to pick).

    python bench/bench_floor.py [--dataset fashion-mnist] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.records import EpochRecord
from vae_explorer.trainer import Trainer


def gemm_rate(n: int = 1024, repeats: int = 20) -> float:
    """fp32 FLOP/s of an n×n by n×n product (the best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def epoch_flops(model: torch.nn.Module, n_images: int) -> float:
    """FLOPs of an epoch's matrix products: 2·in·out per image and linear layer forward, twice
    that backward (weight and input gradients), less the first layer's input gradient."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    per_image = sum(2 * m.in_features * m.out_features for m in linears)  # forward
    first = linears[0]
    backward = 2 * per_image - 2 * first.in_features * first.out_features
    return n_images * (per_image + backward)


def best_epoch(model, data, cfg: TrainConfig, fused: bool, epochs: int) -> float:
    trainer = Trainer(model, data, cfg)
    if fused:  # the same Adam, its update in one kernel (the maths unchanged)
        state = trainer.optimizer.state_dict()
        trainer.optimizer = torch.optim.Adam(trainer._params, lr=cfg.lr, fused=True)
        trainer.optimizer.load_state_dict(state)
    # EpochRecord.seconds: the epoch's training steps, the test evaluation excluded.
    times = [rec.seconds for rec in trainer.run() if isinstance(rec, EpochRecord)]
    return min(times[1:]) if len(times) > 1 else times[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up epoch")
    args = p.parse_args()
    threads = configure_threads()
    data = load_dataset(args.dataset, download=False)
    mcfg = ModelConfig(input_shape=data.image_shape, latent_dim=20, hidden_dim=400)
    rate = gemm_rate()
    floor = epoch_flops(build_model(mcfg, seed=0), len(data.x_train)) / rate
    print(
        f"{data.name}: {len(data.x_train):,} images, MLP {mcfg.input_dim}-400-20, {threads} threads; "
        f"fp32 GEMM {rate / 1e9:.1f} GFLOP/s, epoch floor {floor:.3f} s"
    )
    print(f"{'setting':<34} {'epoch s':>8} {'floor s':>8} {'epoch/floor':>12}")
    for batch, fused in ((128, False), (128, True), (256, False), (512, False), (512, True)):
        cfg = TrainConfig(epochs=args.epochs + 1, batch_size=batch)
        seconds = best_epoch(build_model(mcfg, seed=0), data, cfg, fused, args.epochs)
        label = (
            f"batch {batch}"
            + (", fused Adam" if fused else "")
            + (" (default)" if batch == 128 and not fused else "")
        )
        print(f"{label:<34} {seconds:>8.3f} {floor:>8.3f} {seconds / floor:>12.2f}")
    print("goal: epoch/floor <= 1.3 at the best settings")


if __name__ == "__main__":
    main()
