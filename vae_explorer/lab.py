"""The failure-mode lab: seeded presets that reproduce a classic VAE failure and its fix on 28×28
MNIST (mnist-10k), each small enough to train in seconds on 2 CPU cores, with a detector that
reads the same numbers the Train tab shows (so the lab and the diagnostics agree).

    failure run  --detector-->  fires          fix run  --detector-->  quiet
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .config import TrainConfig
from .diagnostics import BLUR_SHARPNESS, COLLAPSE_KL, HOLES_GAP_PER_DIM
from .records import EpochRecord


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
    detect: Callable[[list[EpochRecord], bool], bool] = field(repr=False)  # (history, rolled back) → fired


def collapsed(history: list[EpochRecord], rolled_back: bool) -> bool:
    """Posterior collapse: the test KL is ~0 or no latent unit is active."""
    if not history:
        return False
    last = history[-1]
    return last.test_kl < COLLAPSE_KL or last.active_units == 0


def prior_holes(history: list[EpochRecord], rolled_back: bool) -> bool:
    """The codes occupy a region the prior does not match: samples from N(0, I) land in holes."""
    if not history:
        return False
    last = history[-1]
    return last.prior_gap > HOLES_GAP_PER_DIM * len(last.kl_per_dim)


def blurry(history: list[EpochRecord], rolled_back: bool) -> bool:
    """Blurry reconstructions: they keep too little of the inputs' edge energy."""
    if not history:
        return False
    sharp = history[-1].sharpness
    return sharp == sharp and sharp < BLUR_SHARPNESS  # NaN (unknown) is not a verdict


def non_finite(history: list[EpochRecord], rolled_back: bool) -> bool:
    """NaN losses: steps were skipped as non-finite, or the weights had to be rolled back."""
    return rolled_back or any(h.skipped_steps for h in history)


# 28×28 MNIST (mnist-10k) with a small MLP: each run takes seconds on 2 CPU cores.
DATA = "mnist-10k"
_MLP_10D = {"arch": "mlp", "latent_dim": 10, "hidden_dim": 256}
_MLP_8D = {"arch": "mlp", "latent_dim": 8, "hidden_dim": 256}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "collapse",
            "Posterior collapse",
            "The KL falls to about 0, every latent dimension is inactive, and every reconstruction "
            "is the same average digit, whatever the input.",
            "With a large β (30) from the first step, encoding anything costs more than it saves: "
            "the encoder learns q(z|x) = p(z) and the decoder learns to ignore z.",
            "KL annealing (β rises from 0 over 3 epochs) lets the decoder learn to use z before "
            "the KL term bites, and free bits (1 nat per dimension) stop the KL of each "
            "dimension from being pushed below that: every reconstruction is its own digit again.",
            Run(DATA, _MLP_10D, TrainConfig(epochs=6, batch_size=128, beta=30.0)),
            Run(
                DATA,
                _MLP_10D,
                TrainConfig(
                    epochs=6, batch_size=128, beta=30.0, kl_schedule="linear", warmup_epochs=3, free_bits=1.0
                ),
            ),
            collapsed,
        ),
        Preset(
            "lagging",
            "Lagging encoder (He et al. 2019)",
            "At a large β (20) the KL rises in the first steps and then dies: about 0.08 nats after two "
            "epochs. Watch the first steps with Step or Slow.",
            "He et al. blame a lagging inference network: at the start q(z|x) knows nothing of x, so to "
            "the decoder z is noise; the decoder learns the average digit faster than the encoder "
            "learns which digit it sees, and the KL term pushes q(z|x) onto the prior before the "
            "encoder catches up.",
            "Their aggressive training: 3 encoder-only steps before each decoder step for the first 2 "
            "epochs (Step's 'Encoder only', on a schedule). The KL term stays alive (0.36 nats, so "
            "the KL detector is quiet) — but read the split beside it: I(x; z) is 0.05 nats against "
            "the collapsed run's 0.08, and the −ELBO is 35 nats worse. The extra KL is codes pushed "
            "off the prior, KL(q(z) ‖ p(z)), not information about x. With this MLP decoder the lag "
            "is not what empties z at β = 20; the objective is (the Posterior collapse preset). He "
            "et al. needed the schedule against autoregressive decoders, which can model x with no "
            "z at all.",
            Run(DATA, _MLP_10D, TrainConfig(epochs=2, batch_size=128, beta=20.0)),
            Run(
                DATA,
                _MLP_10D,
                TrainConfig(epochs=2, batch_size=128, beta=20.0, encoder_steps=3, aggressive_epochs=2.0),
            ),
            collapsed,
        ),
        Preset(
            "holes",
            "Poor samples (prior holes)",
            "Reconstructions are sharp, but samples from the prior are faint smudges that look like "
            "no digit.",
            "With a tiny β (0.05) the KL term hardly matters, so the codes spread out and cluster as "
            "reconstruction likes: their aggregate no longer matches N(0, I), and prior samples "
            "fall in regions no training image maps to.",
            "β = 1 (the true ELBO) pulls the aggregate posterior towards the prior: slightly "
            "blurrier reconstructions, but samples from the prior decode to digits.",
            Run(DATA, _MLP_8D, TrainConfig(epochs=6, batch_size=128, beta=0.05)),
            Run(DATA, _MLP_8D, TrainConfig(epochs=6, batch_size=128, beta=1.0)),
            prior_holes,
        ),
        Preset(
            "blurry",
            "Blurry reconstructions",
            "Every reconstruction is a soft, grey smudge of the right rough shape: the strokes' "
            "edges are gone, and the sharpness figure (edge energy kept) is low.",
            "With a Gaussian likelihood, −log p(x|z) = (x − x̂)²/(2σ²) per pixel: at σ = 1.5 a "
            "pixel wrong by 0.5 costs only 0.06 nats, less than encoding the detail would cost "
            "in KL. So the code carries about a nat, many digits share each code, and the "
            "per-pixel decoder outputs their mean — a blur (the mean-squared-error VAE's classic "
            "look).",
            "σ = 0.1 makes each pixel error 225 times as costly: detail is now worth encoding, the "
            "code carries far more nats, fewer images share a code, and their mean is sharp. "
            "(More latent dimensions, a lower β or a stronger decoder act the same way.)",
            Run(
                DATA,
                {**_MLP_8D, "likelihood": "gaussian", "gaussian_std": 1.5},
                TrainConfig(epochs=6, batch_size=128),
            ),
            Run(
                DATA,
                {**_MLP_8D, "likelihood": "gaussian", "gaussian_std": 0.1},
                TrainConfig(epochs=6, batch_size=128),
            ),
            blurry,
        ),
        Preset(
            "nan",
            "NaN losses",
            "Within the first steps the loss becomes NaN: the steps are skipped and the weights are "
            "rolled back.",
            "A learning rate of 0.5 with no gradient clipping throws the encoder's log-variance to "
            "huge values within a few steps; with no clamp exp(log σ²) overflows, and NaN spreads "
            "through the gradients.",
            "A learning rate Adam can follow (0.01), with log σ² clamped to [−10, 10] and the "
            "gradient norm clipped to 1 as guards, keeps every step finite and the model learns. "
            "(The guards alone keep the numbers finite at 0.5, but the network's units die: the "
            "cure for the instability is the learning rate.)",
            Run(
                DATA,
                {**_MLP_8D, "clamp_logvar": False},
                TrainConfig(epochs=3, batch_size=64, lr=0.5, grad_clip=0.0),
            ),
            Run(DATA, _MLP_8D, TrainConfig(epochs=3, batch_size=64, lr=0.01, grad_clip=1.0)),
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
