"""The failure-mode lab: seeded presets that reproduce a classic VAE failure and its fix, each
small enough to train in seconds on 2 CPU cores, with a detector that reads the same numbers
the Train tab shows (so the lab and the diagnostics agree).

    failure run  --detector-->  fires          fix run  --detector-->  quiet
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .config import TrainConfig
from .diagnostics import BLUR_SHARPNESS, COLLAPSE_KL, HOLES_GAP_PER_DIM


@dataclass(frozen=True)
class Run:
    """One training run of a preset."""

    dataset: str
    model: dict  # ModelConfig fields besides the data set's shape and classes
    train: TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    symptom: str  # what the student sees
    cause: str  # why it happens
    fix: str  # what changes in the fix run, and why it works
    failure: Run
    repaired: Run
    detect: Callable[[list[dict], bool], bool] = field(repr=False)  # (history, rolled_back) → fired


def collapsed(history: list[dict], rolled_back: bool) -> bool:
    """Posterior collapse: the test KL is ~0 or no latent unit is active."""
    if not history:
        return False
    last = history[-1]
    return last["test_kl"] < COLLAPSE_KL or last["active_units"] == 0


def prior_holes(history: list[dict], rolled_back: bool) -> bool:
    """The codes occupy a region the prior does not match: samples from N(0, I) land in holes."""
    if not history:
        return False
    last = history[-1]
    return last["prior_gap"] > HOLES_GAP_PER_DIM * len(last["kl_per_dim"])


def blurry(history: list[dict], rolled_back: bool) -> bool:
    """Blurry reconstructions: they keep too little of the inputs' edge energy."""
    if not history:
        return False
    sharp = history[-1].get("sharpness", float("nan"))
    return sharp == sharp and sharp < BLUR_SHARPNESS  # NaN (unknown) is not a verdict


def non_finite(history: list[dict], rolled_back: bool) -> bool:
    """NaN losses: steps were skipped as non-finite, or the weights had to be rolled back."""
    return rolled_back or any(h.get("skipped_steps", 0) for h in history)


_DIGITS_10D = {"arch": "mlp", "latent_dim": 10, "hidden_dim": 256}
_DIGITS_8D = {"arch": "mlp", "latent_dim": 8, "hidden_dim": 256}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "collapse",
            "Posterior collapse",
            "The KL falls to about 0, every latent dimension is inactive, and every reconstruction "
            "looks like the average digit.",
            "With a large β from the first step, encoding anything costs more than it saves: the "
            "encoder learns q(z|x) = p(z) and the decoder learns to ignore z.",
            "KL annealing (β rises from 0 over 10 epochs) lets the decoder learn to use z before "
            "the KL term bites, and free bits (0.5 nats per dimension) stop the KL of each "
            "dimension from being pushed below that.",
            Run("digits", _DIGITS_10D, TrainConfig(epochs=20, batch_size=64, beta=8.0)),
            Run(
                "digits",
                _DIGITS_10D,
                TrainConfig(
                    epochs=20, batch_size=64, beta=8.0, kl_schedule="linear", warmup_epochs=10, free_bits=0.5
                ),
            ),
            collapsed,
        ),
        Preset(
            "holes",
            "Poor samples (prior holes)",
            "Reconstructions are sharp, but samples from the prior look like no digit.",
            "With a tiny β the KL term hardly matters, so the codes spread out and cluster as "
            "reconstruction likes: their aggregate no longer matches N(0, I), and prior samples "
            "fall in regions no training image maps to.",
            "β = 1 (the true ELBO) pulls the aggregate posterior towards the prior: slightly "
            "blurrier reconstructions, but samples from the prior decode to digits.",
            Run("digits", _DIGITS_8D, TrainConfig(epochs=30, batch_size=64, beta=0.05)),
            Run("digits", _DIGITS_8D, TrainConfig(epochs=30, batch_size=64, beta=1.0)),
            prior_holes,
        ),
        Preset(
            "blurry",
            "Blurry reconstructions",
            "Every reconstruction is a soft, grey smudge of the right rough shape: edges are gone, "
            "and the sharpness figure (edge energy kept) is low.",
            "With a Gaussian likelihood, −log p(x|z) = (x − x̂)²/(2σ²) per pixel: at σ = 0.7 a "
            "pixel wrong by 0.5 costs only 0.26 nats, less than encoding the detail would cost "
            "in KL. So the code carries under a nat, many digits share each code, and the "
            "per-pixel decoder outputs their mean — a blur (the mean-squared-error VAE's classic "
            "look).",
            "σ = 0.1 makes each pixel error 49 times as costly: detail is now worth encoding, the "
            "code carries far more nats, fewer images share a code, and their mean is sharp. "
            "(More latent dimensions, a lower β or a stronger decoder act the same way.)",
            Run(
                "digits",
                {**_DIGITS_8D, "likelihood": "gaussian", "gaussian_std": 0.7},
                TrainConfig(epochs=20, batch_size=64),
            ),
            Run(
                "digits",
                {**_DIGITS_8D, "likelihood": "gaussian", "gaussian_std": 0.1},
                TrainConfig(epochs=20, batch_size=64),
            ),
            blurry,
        ),
        Preset(
            "nan",
            "NaN losses",
            "After a few steps the loss becomes NaN: the steps are skipped and the weights are rolled back.",
            "A high learning rate with no gradient clipping throws the encoder's log-variance to "
            "huge values; with no clamp exp(log σ²) overflows, and NaN spreads through the "
            "gradients.",
            "Clamping log σ² to [−10, 10] and clipping the gradient norm to 1 keep every step "
            "finite at the same learning rate.",
            Run(
                "digits",
                {**_DIGITS_8D, "clamp_logvar": False},
                TrainConfig(epochs=5, batch_size=64, lr=0.2, grad_clip=0.0),
            ),
            Run("digits", _DIGITS_8D, TrainConfig(epochs=5, batch_size=64, lr=0.2, grad_clip=1.0)),
            non_finite,
        ),
    )
}


def train(workspace, run: Run):
    """Build the run's fresh model in a Workspace and train it; yields the trainer's records."""
    workspace.begin_action()
    workspace.new_model(run.dataset, run.train, **run.model)
    yield from workspace.train(run.train)


def fired(workspace, preset: Preset) -> bool:
    """Does the preset's detector fire on the workspace's current run?"""
    stop = workspace.last_stop
    return preset.detect(workspace.run.history, bool(stop and stop.rolled_back))
