"""Autoencoder vs VAE, measured: the same networks, with and without the KL term.

Two figures tell them apart:
- the aggregate-posterior/prior gap (``diagnostics.aggregate_prior_gap``) of the test codes:
  how far the region the codes occupy is from N(0, I), the region samples are drawn from;
- what a simple classifier, trained once per data set on its training images (logistic
  regression on the pixels), says about decodes of seeded prior samples z ~ N(0, I): the share
  it recognises with confidence, how many classes they cover, and the two combined as the
  Inception score (Salimans et al. 2016) with this classifier in place of Inception. The same
  figures for real test images and for reconstructions are the reference.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .build import build_model
from .checkpoint import load_checkpoint, shipped_checkpoints
from .config import ModelConfig, TrainConfig
from .data import load_dataset
from .dataset import ImageDataset
from .diagnostics import aggregate_prior_gap
from .evaluate import encode_all
from .generate import decode_z, interpolate, reconstruct
from .latent import default_projection, embed, project
from .model import LatentModel
from .records import EpochRecord, StepRecord, StopRecord
from .trainer import Trainer

CONFIDENCE = 0.9  # a decode is "recognised" when the classifier's top class probability exceeds this
PRIOR_SAMPLES = 500  # seeded z ~ N(0, I) decoded per model for the figures
CLASSIFIER_IMAGES = 10_000  # training images the classifier sees at most (a seeded subset)
TEST_IMAGES = 2000  # test images encoded for the gap, the map and the reconstructions
# The shipped twins per data set: (autoencoder, VAE), same size, data, seed and training.
SHIPPED_PAIRS: dict[str, tuple[str, str]] = {
    "mnist-10k": ("mnist-ae-2d", "mnist-2d"),
    "digits": ("digits-ae-2d", "digits-2d"),
}
DEFAULT_PAIR = "mnist-10k"


@dataclass
class SimpleClassifier:
    """Logistic regression on the pixels of one data set: a fixed judge of "looks like class k"."""

    dataset: str  # the data set's registry name
    model: Any = field(repr=False)  # a fitted sklearn.linear_model.LogisticRegression
    test_accuracy: float  # share of the test images it classifies correctly

    def proba(self, images: torch.Tensor) -> np.ndarray:
        """Images (N, C, H, W) in [0, 1] → class probabilities (N, K)."""
        flat = images.detach().reshape(len(images), -1).double().cpu().numpy()  # (N, C·H·W)
        return self.model.predict_proba(flat)


_classifiers: dict[tuple, SimpleClassifier] = {}
_classifiers_lock = threading.Lock()


def _data_key(data: ImageDataset) -> tuple:
    # Name and shapes, plus a cheap fingerprint of the pixels: two different sets under one name
    # (an edited npz file, a limited prefix) get their own classifier.
    return (data.name, tuple(data.x_train.shape), tuple(data.x_test.shape), float(data.x_train[::97].sum()))


def classifier_for(data: ImageDataset, seed: int = 0) -> SimpleClassifier:
    """The data set's classifier, fitted once per process (about a second for the digits, 6 s
    for mnist-10k)."""
    if not data.has_labels:
        raise ValueError(f"{data.name} has no labels, so no classifier can judge its images.")
    key = (*_data_key(data), seed)
    with _classifiers_lock:
        if key in _classifiers:
            return _classifiers[key]
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        n = len(data.x_train)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:CLASSIFIER_IMAGES]
        x = data.x_train[idx].reshape(len(idx), -1).double().numpy()  # (n, C·H·W)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs on 784 pixels: close enough
            lr = LogisticRegression(max_iter=1000, random_state=seed).fit(x, data.y_train[idx].numpy())
        x_test = data.x_test.reshape(len(data.x_test), -1).double().numpy()
        acc = float(lr.score(x_test, data.y_test.numpy()))
        clf = SimpleClassifier(data.name, lr, acc)
        _classifiers[key] = clf
        return clf


@dataclass
class Verdict:
    """What the classifier says about one set of images."""

    confident_share: float  # share whose top class probability exceeds the threshold
    score: float  # exp E_x KL(p(y|x) || p(y)): 1 (one class, or nothing recognised) ... K
    classes: float  # effective number of classes covered, exp H(p(y)), p(y) = mean_x p(y|x)
    counts: list[int]  # (K,) images per predicted class


def judge(clf: SimpleClassifier, images: torch.Tensor, threshold: float = CONFIDENCE) -> Verdict:
    """The classifier's verdict on images (N, C, H, W)."""
    p = clf.proba(images)  # (N, K)
    p_y = p.mean(axis=0)  # (K,) the marginal over the images
    kl = (p * (np.log(p + 1e-12) - np.log(p_y + 1e-12))).sum(axis=1)  # (N,)
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    return Verdict(
        confident_share=float((p.max(axis=1) > threshold).mean()),
        score=float(np.exp(kl.mean())),
        classes=float(np.exp(-(p_y * np.log(p_y + 1e-12)).sum())),
        counts=counts.tolist(),
    )


@dataclass
class ModelFigures:
    """One model's side of the comparison."""

    kind: str  # "autoencoder" or "VAE"
    prior_gap: float  # KL(moment-matched aggregate posterior of the test codes || N(0, I)), nats
    prior: Verdict  # on decodes of the seeded prior samples z ~ N(0, I)
    recon: Verdict  # on reconstructions of the test images (decoded from μ)


@dataclass
class Comparison:
    """Autoencoder and VAE on the same data set, judged the same way."""

    dataset: str  # the data set both were trained on
    n_prior: int  # prior samples decoded per model
    seed: int  # seed of the prior samples (the same z for both models)
    threshold: float  # confidence a decode needs to count as recognised
    classifier_accuracy: float  # the judge's accuracy on the real test images
    real: Verdict  # the judge on the real test images: the best one can hope for
    ae: ModelFigures  # the plain autoencoder
    vae: ModelFigures  # the VAE


def prior_z(latent_dim: int, n: int, seed: int) -> torch.Tensor:
    """n seeded draws z ~ N(0, I) → (n, D); the same seed gives both models the same z."""
    return torch.randn((n, latent_dim), generator=torch.Generator().manual_seed(int(seed)))


def _check_model(model: LatentModel, data: ImageDataset) -> None:
    if model.config.input_shape != data.image_shape:
        raise ValueError(f"the model expects images of shape {model.config.input_shape}, not {data.name}'s.")
    if model.config.conditional:
        raise ValueError(
            "the comparison takes unconditional models: a conditional model's label picks the class."
        )


def measure(
    model: LatentModel,
    data: ImageDataset,
    n: int = PRIOR_SAMPLES,
    seed: int = 0,
    threshold: float = CONFIDENCE,
) -> ModelFigures:
    """One model's figures: its prior gap and the classifier's verdicts on its decodes."""
    _check_model(model, data)
    clf = classifier_for(data)
    x = data.x_test[:TEST_IMAGES]  # (M, C, H, W)
    q = encode_all(model, x)  # (M, D)
    samples = decode_z(model, prior_z(model.latent_dim, n, seed))  # (n, C, H, W)
    return ModelFigures(
        kind="autoencoder" if model.config.autoencoder else "VAE",
        prior_gap=aggregate_prior_gap(q.mean, q.logvar),
        prior=judge(clf, samples, threshold),
        recon=judge(clf, reconstruct(model, x), threshold),
    )


def compare(
    ae: LatentModel,
    vae: LatentModel,
    data: ImageDataset,
    n: int = PRIOR_SAMPLES,
    seed: int = 0,
    threshold: float = CONFIDENCE,
) -> Comparison:
    """The measurable difference between an autoencoder and a VAE trained on ``data``."""
    if not ae.config.autoencoder or vae.config.autoencoder:
        raise ValueError("compare takes an autoencoder first and a VAE second.")
    if not 1 <= n <= 10_000:
        raise ValueError(f"the number of prior samples must be from 1 to 10000, got {n}.")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the confidence threshold must be between 0 and 1, got {threshold}.")
    clf = classifier_for(data)
    return Comparison(
        dataset=data.name,
        n_prior=n,
        seed=seed,
        threshold=threshold,
        classifier_accuracy=clf.test_accuracy,
        real=judge(clf, data.x_test[:TEST_IMAGES], threshold),
        ae=measure(ae, data, n, seed, threshold),
        vae=measure(vae, data, n, seed, threshold),
    )


@dataclass
class ModelPair:
    """The two models of one comparison and the data set they share."""

    ae: LatentModel  # the plain autoencoder (z = μ, no KL)
    vae: LatentModel  # the VAE of the same size
    data: ImageDataset  # the data set both were trained on
    source: str  # where they come from, for the user ("shipped ...", "trained now ...")


def load_shipped_pair(dataset: str = DEFAULT_PAIR) -> ModelPair:
    """The shipped autoencoder and VAE twins of a data set."""
    if dataset not in SHIPPED_PAIRS:
        raise ValueError(f"there is a shipped pair for {', '.join(SHIPPED_PAIRS)} only, not {dataset!r}.")
    paths = shipped_checkpoints()
    names = SHIPPED_PAIRS[dataset]
    missing = [n for n in names if n not in paths]
    if missing:
        raise ValueError(f"the shipped checkpoint {missing[0]} is missing: run scripts/make_checkpoints.py.")
    ae, vae = (load_checkpoint(paths[n]).model for n in names)
    return ModelPair(ae, vae, load_dataset(dataset, download=False), f"shipped {names[0]} and {names[1]}")


def twin_trainers(
    data: ImageDataset, latent_dim: int, hidden_dim: int, train: TrainConfig
) -> tuple[Trainer, Trainer]:
    """An autoencoder and a VAE of the same size, weights and seed, ready to train: (ae, vae)."""
    out = []
    for autoencoder in (True, False):
        cfg = ModelConfig(
            input_shape=data.image_shape,
            num_classes=data.num_classes,
            latent_dim=latent_dim,
            hidden_dim=hidden_dim,
            autoencoder=autoencoder,
        )
        out.append(Trainer(build_model(cfg, train.seed), data, train))
    return out[0], out[1]


@dataclass
class TwinRecord:
    """Progress of ``train_twins``: which of the pair is training, and its trainer's record."""

    kind: str  # "autoencoder" or "VAE"
    record: StepRecord | EpochRecord  # the record that trainer yielded


def train_twins(
    data: ImageDataset, latent_dim: int, hidden_dim: int, train: TrainConfig
) -> Iterator[TwinRecord | ModelPair]:
    """Train the autoencoder, then the VAE (``twin_trainers``): yields their records, then the
    trained pair. A run that stops early (non-finite losses) is a ValueError saying which."""
    ae, vae = twin_trainers(data, latent_dim, hidden_dim, train)
    for kind, trainer in (("autoencoder", ae), ("VAE", vae)):
        for rec in trainer.run():
            if isinstance(rec, StopRecord):
                raise ValueError(f"the {kind} stopped: {rec.reason}")
            yield TwinRecord(kind, rec)
    source = (
        f"Trained now: latent {latent_dim}, hidden {hidden_dim}, {train.epochs} epochs, seed {train.seed}"
    )
    yield ModelPair(ae.model, vae.model, data, source)


@dataclass
class LatentMap:
    """Where the test codes and the prior samples land on a 2-D map of one model's latent."""

    method: str  # "identity" (2-D latent) or "pca" (the plane of the codes' first two components)
    coords: np.ndarray  # (M, 2) the test images' μ on the map
    labels: np.ndarray  # (M,) their classes
    prior_centre: np.ndarray  # (2,) where z = 0 lands; N(0, I) projects to N(centre, I₂)
    samples: np.ndarray  # (S, 2) the prior samples z ~ N(0, I) on the map


def latent_map(model: LatentModel, data: ImageDataset, z: torch.Tensor, n: int = TEST_IMAGES) -> LatentMap:
    """The map of the test codes (up to n) with the prior samples z (S, D) placed on it. PCA is
    an orthonormal projection, so the prior's 1σ and 2σ circles keep their radii 1 and 2."""
    x, y = data.x_test[:n], data.y_test[:n]
    mu = encode_all(model, x).mean  # (M, D)
    proj = project(mu, default_projection(model.latent_dim))
    origin = embed(proj, np.zeros((1, model.latent_dim), dtype=np.float32))[0]  # (2,)
    return LatentMap(proj.method, proj.coords, y.numpy(), origin, embed(proj, z.numpy()))


def interpolate_between(
    model: LatentModel, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 9
) -> torch.Tensor:
    """Decodes along the straight line from μ(x_a) to μ(x_b); x_a, x_b (1, C, H, W) → (steps, C, H, W)."""
    mu = encode_all(model, torch.cat([x_a, x_b])).mean  # (2, D)
    return decode_z(model, interpolate(mu[0], mu[1], steps, "linear"))


def first_of_class(data: ImageDataset, label: int) -> int:
    """Index of the first test image of a class."""
    idx = torch.nonzero(data.y_test == label).flatten()
    if len(idx) == 0:
        raise ValueError(f"the test set has no image of class {label}.")
    return int(idx[0])
