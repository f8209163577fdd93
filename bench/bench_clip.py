"""Test −ELBO after a few epochs at each gradient-clip setting, side by side with one seed: the
numbers behind TrainConfig's default ``grad_clip``.

The loss is summed over an image's pixels (nats per image), so its gradient norm is large; a clip
far below the usual norm clips nearly every step and slows learning. Each setting trains the
784-400-20 MLP (Adam 1e-3, batch 128) from the same initial weights and batch order; printed: the
test −ELBO, how many steps were clipped, and the median gradient norm. The last column is the gap
to the best setting in nats.

    python bench/bench_clip.py [--dataset fashion-mnist] [--epochs 2] [--clips 0 1 10 ...] [--latent 20]
"""

from __future__ import annotations

import argparse
import statistics

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.records import EpochRecord, StepRecord
from vae_explorer.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--clips", type=float, nargs="+", default=[0.0, 1.0, 10.0, 50.0, 100.0, 1000.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latent", type=int, default=20)
    args = p.parse_args()
    configure_threads()
    data = load_dataset(args.dataset, download=False)
    mcfg = ModelConfig(input_shape=data.image_shape, latent_dim=args.latent, hidden_dim=400)
    rows = []
    for clip in args.clips:
        cfg = TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3, grad_clip=clip, seed=args.seed)
        trainer = Trainer(build_model(mcfg, seed=args.seed), data, cfg)
        norms, last = [], None
        for rec in trainer.run():
            if isinstance(rec, StepRecord) and not rec.skipped:
                norms.append(rec.grad_norm)
            elif isinstance(rec, EpochRecord):
                last = rec
        clipped = sum(n > clip for n in norms) / len(norms) if clip > 0 else 0.0
        rows.append((clip, last.test_loss, clipped, statistics.median(norms)))
    best = min(r[1] for r in rows)
    print(f"{data.name}, MLP {mcfg.input_dim}-400-{args.latent}, batch 128, Adam 1e-3, {args.epochs} epochs")
    head = ("grad clip", "test -ELBO", "steps clipped", "median norm", "behind best")
    print(" ".join(f"{h:>13}" for h in head))
    for clip, loss, clipped, median in rows:
        name = "off" if clip == 0 else f"{clip:g}"
        print(f"{name:>13} {loss:>13.2f} {clipped:>13.0%} {median:>13.1f} {loss - best:>13.2f}")


if __name__ == "__main__":
    main()
