"""One-level VAE against the two-level hierarchical VAE on Fashion-MNIST (Debian's copy), same
data, epochs, optimiser and seed: test negative ELBO, IWAE -log p(x), KL per level, active top
units and seconds per epoch. Two pairs: a 20-D one-level model against z₂ = 20 over z₁ = 32, and
the plottable 2-D latent against z₂ = 2 over z₁ = 16.

    python bench/bench_hierarchical.py [--epochs 10] [--iwae-k 100] [--iwae-n 2000] [--json]

Each hierarchical model trains twice: without free bits and with 0.5 nats per dimension, because
without them the top level tends to collapse (the diagnosis says so, and this shows how often).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import availability, load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.evaluate import evaluate
from vae_explorer.records import EpochRecord
from vae_explorer.trainer import Trainer

RUNS = {
    "one-level, z 20": ({"latent_dim": 20}, 0.0),
    "hierarchical, z2 20 / z1 32": ({"arch": "hierarchical", "latent_dim": 20, "bottom_latent_dim": 32}, 0.0),
    "hierarchical, z2 20 / z1 32, free bits 0.5": (
        {"arch": "hierarchical", "latent_dim": 20, "bottom_latent_dim": 32},
        0.5,
    ),
    "one-level, z 2": ({"latent_dim": 2}, 0.0),
    "hierarchical, z2 2 / z1 16": ({"arch": "hierarchical", "latent_dim": 2, "bottom_latent_dim": 16}, 0.0),
    "hierarchical, z2 2 / z1 16, free bits 0.5": (
        {"arch": "hierarchical", "latent_dim": 2, "bottom_latent_dim": 16},
        0.5,
    ),
}


def run(name: str, data, model_kw: dict, free_bits: float, args) -> dict:
    cfg = ModelConfig(input_shape=data.image_shape, hidden_dim=400, **model_kw)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=128, free_bits=free_bits, seed=0)
    trainer = Trainer(build_model(cfg, seed=0), data, tcfg)
    seconds = 0.0
    for rec in trainer.run():
        if isinstance(rec, EpochRecord):
            seconds += rec.seconds
    x, y = data.x_test[: args.iwae_n], data.y_test[: args.iwae_n]
    t0 = time.perf_counter()
    ev = evaluate(trainer.model, x, y, seed=1, iwae_k=args.iwae_k)
    return {
        "run": name,
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "test_neg_elbo": ev.neg_elbo,
        "test_iwae_nll": ev.iwae_nll,
        "kl_levels": ev.kl_levels,
        "active_top_units": ev.active_units,
        "top_dims": cfg.latent_dim,
        "s_per_epoch": seconds / args.epochs,
        "eval_s": time.perf_counter() - t0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--iwae-k", type=int, default=100)
    p.add_argument("--iwae-n", type=int, default=2000, help="test images for the evaluation")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--only", default=None, help="run only the runs whose name contains this")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    ok, note = availability(args.dataset)
    if not ok:
        raise SystemExit(f"bench_hierarchical: {args.dataset} is not available here ({note}).")
    configure_threads()
    torch.manual_seed(0)
    data = load_dataset(args.dataset)
    rows = []
    for name, (kw, fb) in RUNS.items():
        if args.only and args.only not in name:
            continue
        rows.append(run(name, data, kw, fb, args))
        r = rows[-1]
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            levels = " + ".join(f"{v:.1f}" for v in r["kl_levels"])
            print(
                f"{r['run']:<44} {r['params'] / 1e3:6.0f}k params  −ELBO {r['test_neg_elbo']:7.2f}  "
                f"IWAE {r['test_iwae_nll']:7.2f}  KL {levels:>13}  active top "
                f"{r['active_top_units']}/{r['top_dims']}  {r['s_per_epoch']:5.1f} s/epoch",
                flush=True,
            )


if __name__ == "__main__":
    main()
