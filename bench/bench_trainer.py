"""Seconds per epoch: the project's Trainer against a plain PyTorch loop, side by side.

Both train the canonical 784-400-20 MLP VAE (Bernoulli likelihood, Adam 1e-3, batch 128) on the
same in-memory tensors (Fashion-MNIST when installed, else the 8×8 digits). Epochs alternate
between the two so that machine noise hits both alike; the medians and their ratio are printed.
The Trainer's time runs from asking for the first step until the epoch's last StepRecord arrives
(its test evaluation happens after that and is reported separately).

    python bench/bench_trainer.py [--epochs 6] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.model import build_model, configure_threads
from vae_explorer.trainer import EpochRecord, StepRecord, Trainer


def plain_epoch(model, opt, x: torch.Tensor, batch_size: int, gen: torch.Generator) -> float:
    """The pytorch/examples VAE loop over in-memory tensors, loss per image (no clipping)."""
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(x), generator=gen)
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[perm[i : i + batch_size]]
        mu, logvar = model.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kld) / len(xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return time.perf_counter() - t0


def trainer_epoch(trainer: Trainer) -> tuple[float, float]:
    """(seconds until the last step record, seconds including the epoch's evaluation)."""
    t0 = time.perf_counter()
    t_last_step = t0
    for rec in trainer.run(epochs=1):
        if isinstance(rec, StepRecord):
            t_last_step = time.perf_counter()
        elif isinstance(rec, EpochRecord):
            pass
    return t_last_step - t0, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--dataset", default=None, help="default: fashion-mnist if installed, else digits")
    args = p.parse_args()
    threads = configure_threads()
    name = args.dataset
    if name is None:
        try:
            data = load_dataset("fashion-mnist", download=False)
        except ValueError:
            data = load_dataset("digits")
    else:
        data = load_dataset(name, download=False)
    mcfg = ModelConfig(input_shape=data.image_shape, latent_dim=20, hidden_dim=400)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3)
    trainer = Trainer(build_model(mcfg, seed=0), data, tcfg)
    # The same trainer with clipping off: what the guard and the metrics alone cost.
    noclip = Trainer(build_model(mcfg, seed=0), data, TrainConfig(**{**tcfg.to_dict(), "grad_clip": 0.0}))
    plain_model = build_model(mcfg, seed=0)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    # One warm-up epoch each (allocator, kernels), not counted.
    plain_epoch(plain_model, plain_opt, data.x_train, 128, gen)
    trainer_epoch(trainer)
    trainer_epoch(noclip)
    plain_s, trainer_s, trainer_full, noclip_s = [], [], [], []
    for _ in range(args.epochs):
        plain_s.append(plain_epoch(plain_model, plain_opt, data.x_train, 128, gen))
        steps, full = trainer_epoch(trainer)
        trainer_s.append(steps)
        trainer_full.append(full)
        noclip_s.append(trainer_epoch(noclip)[0])
    p_med, t_med, f_med, n_med = (statistics.median(v) for v in (plain_s, trainer_s, trainer_full, noclip_s))
    n = len(data.x_train)
    print(
        f"data set {data.name}: {n} training images {data.image_shape}, batch 128, "
        f"MLP {mcfg.input_dim}-400-20, torch {torch.__version__}, {threads} threads"
    )
    rows = (
        ("plain PyTorch loop  ", p_med, plain_s),
        ("vae_explorer.Trainer", t_med, trainer_s),
        ("Trainer, clip off   ", n_med, noclip_s),
    )
    for label, med, runs in rows:
        print(f"{label}: {med:.3f} s/epoch  ({n / med:,.0f} img/s)  runs {[round(s, 3) for s in runs]}")
    print(f"  with its per-epoch test evaluation: {f_med:.3f} s/epoch")
    # This machine's speed jumps between runs (shared hosts); the fastest run of each is the
    # least disturbed, so the ratio of minima is printed beside the ratio of medians.
    p_min, t_min, n_min = min(plain_s), min(trainer_s), min(noclip_s)
    print(
        f"ratio Trainer / plain: median {t_med / p_med:.3f}, fastest {t_min / p_min:.3f}  "
        "(goal <= 1.05; gradient clipping on, as by default)"
    )
    print(f"ratio Trainer with clipping off / plain: median {n_med / p_med:.3f}, fastest {n_min / p_min:.3f}")


if __name__ == "__main__":
    main()
