"""The Train tab's settings: one check per control for values sent from anywhere (the API may
send anything), shared by training, saving a session and restoring one."""

from __future__ import annotations

import gradio as gr

from ..config import ARCHS, GAUSSIAN_VARIANCES, KL_SCHEDULES, LIKELIHOODS, TrainConfig
from ..data import dataset_names
from .common import LIMITS, as_bool, as_choice, as_float, as_int, guard

# The Train and Continue endpoints take these, in this order (their API argument names).
MODEL_KEYS = (
    "arch",
    "latent_dim",
    "hidden_dim",
    "likelihood",
    "gaussian_variance",
    "gaussian_std",
    "conditional",
    "bottom_latent_dim",
    "autoencoder",
)


# Each control's check of an untrusted value (the API may send anything): name → parser.
MODEL_PARSERS = {
    "arch": lambda v: as_choice(v, "Architecture", ARCHS),
    "latent_dim": lambda v: as_int(v, "Latent size", 1, LIMITS.max_latent),
    "hidden_dim": lambda v: as_int(v, "Hidden size", 8, LIMITS.max_hidden),
    "likelihood": lambda v: as_choice(v, "Likelihood", LIKELIHOODS),
    "gaussian_variance": lambda v: as_choice(v, "Gaussian variance", GAUSSIAN_VARIANCES),
    "gaussian_std": lambda v: as_float(v, "Gaussian σ", 0.001, 1.0),
    "conditional": lambda v: as_bool(v, "Conditional"),
    "bottom_latent_dim": lambda v: as_int(v, "Lower latent z₁ size", 1, LIMITS.max_latent),
    "autoencoder": lambda v: as_bool(v, "Plain autoencoder"),
}
TRAIN_PARSERS = {
    "epochs": lambda v: as_int(v, "Epochs", 1, LIMITS.max_epochs),
    "batch_size": lambda v: as_int(v, "Batch size", 1, 4096),
    "lr": lambda v: as_float(v, "Learning rate", 1e-6, 1.0),
    "beta": lambda v: as_float(v, "β", 0.0, 100.0),
    "kl_schedule": lambda v: as_choice(v, "KL schedule", KL_SCHEDULES),
    "warmup_epochs": lambda v: as_float(v, "Warm-up epochs", 0.0, 1000.0),
    "cycles": lambda v: as_int(v, "Cycles", 1, 100),
    "cycle_ratio": lambda v: as_float(v, "Cycle ratio", 0.01, 1.0),
    "free_bits": lambda v: as_float(v, "Free bits", 0.0, 10.0),
    "grad_clip": lambda v: as_float(v, "Gradient clip", 0.0, 1000.0),
    "binarize": lambda v: as_bool(v, "Binarize"),
    "seed": lambda v: as_int(v, "Seed", 0, 2**31 - 1),
}
PARSERS = {
    "dataset": lambda v: as_choice(v, "Data set", dataset_names()),
    **MODEL_PARSERS,
    **TRAIN_PARSERS,
}


def parse_settings(s: dict) -> tuple[str, dict, TrainConfig]:
    """The controls' values as sent (untrusted) → (data set, model settings, TrainConfig)."""
    dataset = PARSERS["dataset"](s["dataset"])
    model = {k: parse(s[k]) for k, parse in MODEL_PARSERS.items()}
    train = {k: parse(s[k]) for k, parse in TRAIN_PARSERS.items()}
    return dataset, model, guard(lambda: TrainConfig(**train))


def restorable(session: dict) -> tuple[dict, int]:
    """The saved settings that pass today's checks (limits may differ from where the file was
    made), and how many were dropped."""
    good, dropped = {}, 0
    for key, value in session.items():
        if key in PARSERS:
            try:
                good[key] = PARSERS[key](value)
            except gr.Error:
                dropped += 1
    return good, dropped
