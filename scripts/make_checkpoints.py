"""Regenerate the pretrained models shipped in checkpoints/ and their README table.

Seeded and reproducible on CPU:  python scripts/make_checkpoints.py [--only NAME]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vae_explorer.build import build_model
from vae_explorer.checkpoint import SHIPPED_DIR, load_checkpoint, save_checkpoint
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.evaluate import evaluate
from vae_explorer.records import EpochRecord, StopRecord
from vae_explorer.trainer import Trainer

IWAE_K = 500


@dataclass
class Recipe:
    name: str
    dataset: str
    about: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    iwae_k: int = IWAE_K  # importance samples for the table's -log p(x); 0 for an autoencoder


# How the 28×28 2-D models (VAE, its autoencoder twin, the conditional one) are trained.
MNIST_TRAIN = {"epochs": 150, "batch_size": 128, "lr": 1e-3, "seed": 0}

RECIPES = [
    Recipe(
        "mnist-2d",
        "mnist-10k",
        "the app's default: real 28×28 digits with a 2-D latent you can plot and click directly "
        "(its identity map is the classic MNIST manifold)",
        model={"latent_dim": 2, "hidden_dim": 400},
        train=MNIST_TRAIN,
        iwae_k=100,
    ),
    Recipe(
        "mnist-ae-2d",
        "mnist-10k",
        "the plain autoencoder twin of mnist-2d (z = μ, no KL) for the AE-vs-VAE comparison",
        model={"latent_dim": 2, "hidden_dim": 400, "autoencoder": True},
        train=MNIST_TRAIN,
        iwae_k=0,
    ),
    Recipe(
        "mnist-conditional",
        "mnist-10k",
        "a conditional VAE (Sohn et al. 2015) on real digits: the label picks the digit, z the style",
        model={"latent_dim": 2, "hidden_dim": 400, "conditional": True},
        train=MNIST_TRAIN,
        iwae_k=100,
    ),
    Recipe(
        "mnist-20d",
        "mnist-10k",
        "the canonical 784-400-20 MNIST VAE of the VAE paper and pytorch/examples: sharper images, "
        "PCA/t-SNE maps",
        model={"latent_dim": 20, "hidden_dim": 400},
        train={"epochs": 60, "batch_size": 128, "lr": 1e-3, "seed": 0},
        iwae_k=100,
    ),
    Recipe(
        "mnist-hierarchical",
        "mnist-10k",
        "a two-level hierarchical VAE (z₂ 8 over z₁ 32, top-down inference): the KL of each level",
        model={"arch": "hierarchical", "latent_dim": 8, "bottom_latent_dim": 32, "hidden_dim": 400},
        train={"epochs": 60, "batch_size": 128, "lr": 1e-3, "seed": 0},
        iwae_k=100,
    ),
    Recipe(
        "digits-2d",
        "digits",
        "the model that trains in a second: 8×8 digits with a 2-D latent",
        model={"latent_dim": 2, "hidden_dim": 256},
        train={"epochs": 300, "batch_size": 64, "lr": 1e-3, "seed": 0},
    ),
    Recipe(
        "digits-ae-2d",
        "digits",
        "the plain autoencoder twin of digits-2d (z = μ, no KL) for the AE-vs-VAE comparison",
        model={"latent_dim": 2, "hidden_dim": 256, "autoencoder": True},
        train={"epochs": 300, "batch_size": 64, "lr": 1e-3, "seed": 0},
        iwae_k=0,  # an autoencoder defines no p(x): no ELBO, no importance-weighted bound
    ),
    Recipe(
        "digits-conditional",
        "digits",
        "a conditional VAE (Sohn et al. 2015): the label picks the digit, z the style",
        model={"latent_dim": 2, "hidden_dim": 256, "conditional": True},
        train={"epochs": 300, "batch_size": 64, "lr": 1e-3, "seed": 0},
    ),
    Recipe(
        "fashion-mnist-2d",
        "fashion-mnist",
        "Fashion-MNIST (Debian's dataset-fashion-mnist) with a 2-D latent: a map of clothing",
        model={"latent_dim": 2, "hidden_dim": 400},
        train={"epochs": 30, "batch_size": 128, "lr": 1e-3, "seed": 0},
        iwae_k=100,
    ),
    Recipe(
        "fashion-mnist-20d",
        "fashion-mnist",
        "Fashion-MNIST with the canonical 784-400-20 model: sharper images, PCA/t-SNE maps",
        model={"latent_dim": 20, "hidden_dim": 400},
        train={"epochs": 30, "batch_size": 128, "lr": 1e-3, "seed": 0},
        iwae_k=100,
    ),
]


def build(recipe: Recipe) -> Path:
    data = load_dataset(recipe.dataset, download=False)
    mcfg = ModelConfig(input_shape=data.image_shape, num_classes=data.num_classes, **recipe.model)
    tcfg = TrainConfig(**recipe.train)
    trainer = Trainer(build_model(mcfg, tcfg.seed), data, tcfg)
    for rec in trainer.run():
        if isinstance(rec, StopRecord):
            raise SystemExit(f"{recipe.name}: training stopped: {rec.reason}")
        if isinstance(rec, EpochRecord) and rec.epoch % 10 == 0:
            print(f"{recipe.name} epoch {rec.epoch}: test {rec.test_loss:.2f} nats", file=sys.stderr)
    res = evaluate(trainer.model, data.x_test, data.y_test, iwae_k=recipe.iwae_k)
    metrics = {
        "test_neg_elbo": res.neg_elbo,
        "test_iwae_nll": res.iwae_nll,
        "iwae_k": recipe.iwae_k,
        "test_kl": res.kl,
        "active_units": res.active_units,
    }
    path = SHIPPED_DIR / f"{recipe.name}.safetensors"
    # No optimizer state: a shipped model is a starting point, and it keeps the file small.
    save_checkpoint(path, trainer.model, trainer.run_info(), optimizer=None, metrics=metrics)
    return path


def table() -> str:
    rows = [
        "| file | data set | config | epochs | test −ELBO | IWAE NLL | size | what it is for |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for recipe in RECIPES:
        path = SHIPPED_DIR / f"{recipe.name}.safetensors"
        if not path.exists():
            continue
        ck = load_checkpoint(path)
        c, m = ck.model.config, ck.metrics
        cfg = f"{c.arch} {c.input_dim}-{c.hidden_dim}-{c.latent_dim}, {c.likelihood}"
        if c.conditional:
            cfg += ", conditional"
        if c.autoencoder:
            # No KL and no p(x): the loss is the reconstruction term alone, not an ELBO.
            cfg += ", autoencoder"
            loss, nll = f"{m['test_neg_elbo']:.2f} (recon only)", "—"
        else:
            loss, nll = f"{m['test_neg_elbo']:.2f}", f"{m['test_iwae_nll']:.2f} (K={m['iwae_k']})"
        rows.append(
            f"| `{path.name}` | {ck.run.dataset} | {cfg} | {ck.run.epoch} | {loss} | {nll} | "
            f"{path.stat().st_size / 1024:.0f} KB | {recipe.about} |"
        )
    return "\n".join(rows)


README = """# Shipped checkpoints

Small pretrained models, so that every tab works the moment the app opens. Each file is a
self-describing `.safetensors` checkpoint (config, training history and metrics in its
metadata); regenerate them all, seeded and reproducibly, with

    python scripts/make_checkpoints.py

Losses are nats per image on the data set's test split: the negative ELBO with a sampled z,
and the importance-weighted estimate of −log p(x) (Burda et al. 2015) with K samples.

{table}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=None, help="rebuild only these checkpoints")
    args = p.parse_args()
    configure_threads()
    for recipe in RECIPES:
        if args.only is None or recipe.name in args.only:
            print(f"wrote {build(recipe)}", file=sys.stderr)
    (SHIPPED_DIR / "README.md").write_text(README.format(table=table()))


if __name__ == "__main__":
    main()
