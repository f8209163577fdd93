"""The AE-vs-VAE comparison: a classifier as judge, the prior gap, and the shipped twins.

Measured on the shipped pair (digits, 2-D latent, 300 epochs each, 500 prior samples, seed 0):
gap 19.08 nats (AE) vs 0.010 (VAE); classes covered 5.0 vs 9.9 of 10; classifier score 2.29
vs 4.51; but the share recognised with confidence is about the same, 30% vs 33% (seeds 0-4:
0.30-0.34 vs 0.30-0.36), so no test claims the VAE's share is higher in 2-D. With an 8-D latent
it is (see the slow test at the end).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_dataset
from vae_explorer import compare
from vae_explorer.build import build_model
from vae_explorer.checkpoint import load_checkpoint, shipped_checkpoints
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def shipped():
    return compare.load_shipped_pair("digits")


@pytest.fixture(scope="module")
def shipped_comparison(shipped):
    return compare.compare(shipped.ae, shipped.vae, shipped.data, n=500, seed=0)


def test_the_classifier_is_confident_on_real_digits_and_not_on_noise(digits):
    clf = compare.classifier_for(digits)
    assert clf is compare.classifier_for(digits)  # fitted once per data set
    assert clf.test_accuracy > 0.9
    real = compare.judge(clf, digits.x_test)
    noise = compare.judge(clf, torch.rand((500, 1, 8, 8), generator=torch.Generator().manual_seed(0)))
    assert real.confident_share > 0.6 and noise.confident_share < 0.15
    assert real.classes > 9.5  # the test set is balanced
    assert real.score > 2 * noise.score
    assert sum(real.counts) == len(digits.x_test) and len(real.counts) == 10


def test_the_verdict_on_constructed_probabilities():
    """One class only: score 1, one class covered; ten confident, even classes: score 10."""

    class Fixed:
        def __init__(self, p):
            self.p = p

        def proba(self, images):
            return self.p

    one = compare.judge(Fixed(np.tile(np.eye(10)[3], (20, 1))), torch.zeros(20, 1, 8, 8))
    assert one.confident_share == 1.0 and one.counts[3] == 20
    assert one.score == pytest.approx(1.0) and one.classes == pytest.approx(1.0)
    even = compare.judge(Fixed(np.tile(np.eye(10), (2, 1))), torch.zeros(20, 1, 8, 8))
    assert even.score == pytest.approx(10.0, rel=1e-6) and even.classes == pytest.approx(10.0, rel=1e-6)
    unsure = compare.judge(Fixed(np.full((20, 10), 0.1)), torch.zeros(20, 1, 8, 8))
    assert unsure.confident_share == 0.0 and unsure.score == pytest.approx(1.0)


def test_the_shipped_twins_are_the_same_size_and_training(shipped):
    ae, vae = (load_checkpoint(shipped_checkpoints()[n]) for n in compare.SHIPPED_PAIRS["digits"])
    assert ae.model.config.autoencoder and not vae.model.config.autoencoder
    a, v = ae.model.config.to_dict(), vae.model.config.to_dict()
    a.pop("autoencoder"), v.pop("autoencoder")
    assert a == v
    assert ae.run.train == vae.run.train and ae.run.epoch == vae.run.epoch and ae.run.dataset == "digits"
    assert ae.metrics["iwae_k"] == 0 and ae.metrics["test_kl"] == 0.0
    assert shipped.data.name == "digits" and "shipped" in shipped.source


def test_the_vae_covers_the_prior_and_the_autoencoder_does_not(shipped_comparison):
    """The lesson, measured: the gap, and how many classes the prior samples amount to."""
    c = shipped_comparison
    assert c.ae.kind == "autoencoder" and c.vae.kind == "VAE"
    assert c.ae.prior_gap > 1.0 and c.vae.prior_gap < 0.1 and c.ae.prior_gap > 100 * c.vae.prior_gap
    assert c.vae.prior.classes > 9.0 and c.ae.prior.classes < 7.0
    assert c.vae.prior.score > 1.5 * c.ae.prior.score
    # Reference figures: real images are judged best; the AE (no KL to pay) reconstructs better.
    assert c.real.confident_share > max(c.ae.prior.confident_share, c.vae.prior.confident_share)
    assert c.ae.recon.confident_share > c.vae.recon.confident_share
    assert c.n_prior == 500 and c.threshold == compare.CONFIDENCE and c.classifier_accuracy > 0.9


def test_in_2d_the_confident_share_alone_does_not_tell_them_apart(shipped_comparison):
    """Recorded, not wished away: the AE's decoder still draws digit-like strokes around the
    origin in 2-D, just mostly two classes. If this starts failing, the figures changed."""
    c = shipped_comparison
    assert abs(c.ae.prior.confident_share - c.vae.prior.confident_share) < 0.1
    top_two = sorted(c.ae.prior.counts)[-2:]
    assert sum(top_two) > 0.5 * c.n_prior  # most AE samples look like one of two classes


def test_the_same_seed_gives_the_same_figures_and_the_same_z(shipped):
    a = compare.measure(shipped.vae, shipped.data, n=100, seed=3)
    b = compare.measure(shipped.vae, shipped.data, n=100, seed=3)
    assert a == b
    torch.testing.assert_close(compare.prior_z(2, 64, 3), compare.prior_z(2, 500, 3)[:64])


def test_latent_map_and_interpolation(shipped, digits):
    z = compare.prior_z(2, 16, 0)
    lm = compare.latent_map(shipped.ae, digits, z)
    assert lm.method == "identity" and lm.coords.shape == (len(digits.x_test), 2)
    np.testing.assert_allclose(lm.samples, z.numpy(), rtol=1e-6)
    np.testing.assert_allclose(lm.prior_centre, [0, 0], atol=1e-6)
    frames = compare.interpolate_between(shipped.vae, digits.x_test[:1], digits.x_test[1:2], steps=5)
    assert frames.shape == (5, 1, 8, 8) and frames.min() >= 0 and frames.max() <= 1
    assert compare.first_of_class(digits, 7) == int(torch.nonzero(digits.y_test == 7)[0])


def test_an_8d_map_uses_pca_and_keeps_the_prior_circles_honest(digits):
    model = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=8, hidden_dim=32), seed=0)
    z = compare.prior_z(8, 10, 0)
    lm = compare.latent_map(model, digits, z, n=200)
    assert lm.method == "pca" and lm.coords.shape == (200, 2) and lm.samples.shape == (10, 2)
    assert np.isfinite(lm.prior_centre).all()


def test_wrong_inputs_are_refused_with_a_sentence(shipped, digits):
    with pytest.raises(ValueError, match="autoencoder first"):
        compare.compare(shipped.vae, shipped.ae, digits)
    with pytest.raises(ValueError, match="prior samples"):
        compare.compare(shipped.ae, shipped.vae, digits, n=0)
    with pytest.raises(ValueError, match="threshold"):
        compare.compare(shipped.ae, shipped.vae, digits, threshold=1.5)
    cond = build_model(ModelConfig(input_shape=(1, 8, 8), hidden_dim=16, conditional=True))
    with pytest.raises(ValueError, match="unconditional"):
        compare.measure(cond, digits)
    with pytest.raises(ValueError, match="shape"):
        compare.measure(shipped.vae, make_dataset(shape=(1, 4, 4)))
    with pytest.raises(ValueError, match="shipped pair"):
        compare.load_shipped_pair("kmnist")
    unlabelled = make_dataset()
    unlabelled.has_labels = False
    with pytest.raises(ValueError, match="no labels"):
        compare.classifier_for(unlabelled)


def test_twin_trainers_share_size_seed_and_data(digits):
    ae, vae = compare.twin_trainers(digits, 3, 32, TrainConfig(epochs=1, batch_size=64, seed=5))
    assert ae.model.config.autoencoder and not vae.model.config.autoencoder
    assert ae.data is vae.data and ae.config == vae.config
    # The same seed: the same initial weights, so training is the only difference.
    for (k, a), (_, b) in zip(ae.model.state_dict().items(), vae.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.slow
def test_with_an_8d_latent_the_vae_samples_are_recognised_more_often(digits):
    """Where the confident share does separate them: 8-D, 30 epochs each (measured: AE 5.8%,
    VAE 12.2%; gap 29.4 vs 0.07 nats)."""
    ae, vae = compare.twin_trainers(digits, 8, 256, TrainConfig(epochs=30, batch_size=64, seed=0))
    for t in (ae, vae):
        for _ in t.run():
            pass
    c = compare.compare(ae.model, vae.model, digits)
    assert c.vae.prior.confident_share > 1.5 * c.ae.prior.confident_share
    assert c.ae.prior_gap > 100 * c.vae.prior_gap
    assert c.vae.prior.score > c.ae.prior.score


@pytest.mark.slow
def test_the_default_mnist_pair_tells_the_autoencoder_from_the_vae():
    """The shipped mnist-ae-2d and mnist-2d (28×28, 2-D latent, 150 epochs each), 500 prior
    samples, seed 0. Measured: gap 52.58 vs 0.169 nats; classes 6.5 vs 9.2; score 3.60 vs 5.87;
    confident share 28% vs 47% (unlike the 8×8 digits, the share separates them in 2-D)."""
    pair = compare.load_shipped_pair()
    assert pair.data.name == "mnist-10k" and compare.DEFAULT_PAIR == "mnist-10k"
    c = compare.compare(pair.ae, pair.vae, pair.data, n=500, seed=0)
    assert c.classifier_accuracy > 0.88
    assert c.ae.prior_gap > 100 * c.vae.prior_gap and c.vae.prior_gap < 0.5
    assert c.vae.prior.classes > 9 > 7 > c.ae.prior.classes
    assert c.vae.prior.score > 1.4 * c.ae.prior.score
    assert c.vae.prior.confident_share > c.ae.prior.confident_share + 0.1
