"""Test-set evaluation (vae_explorer/evaluate.py): the sampled-z negative ELBO and its parts, the
per-level and per-dimension KL, the IWAE bound below it, seeding, labels, the model's mode kept,
and encode_all's posteriors of a whole data set a batch at a time."""

from __future__ import annotations

import math

import pytest
import torch

from vae_explorer import loss
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.evaluate import encode_all, evaluate
from vae_explorer.trainer import Trainer

CFG = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=64)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    """A 2-D VAE after 5 epochs on the digits (about a second), and its trainer."""
    t = Trainer(build_model(CFG, seed=0), digits, TrainConfig(epochs=5, batch_size=64))
    list(t.run())
    return t


def test_the_parts_add_up_and_agree_with_the_trainers_epoch_record(trained, digits):
    r = evaluate(trained.model, digits.x_test, digits.y_test)
    assert r.n == 360 and r.iwae_nll is None
    assert r.neg_elbo == pytest.approx(r.recon + r.kl, rel=1e-9)
    assert r.kl_levels == [pytest.approx(r.kl)] and len(r.kl_per_dim) == 2
    assert sum(r.kl_per_dim) == pytest.approx(r.kl, rel=1e-5)
    assert r.active_units == r.diagnosis.active_units == 2 and not r.diagnosis.collapsed
    assert 0 < r.sharpness < 1  # a VAE's reconstructions are blurrier than its inputs
    # The trainer's test figures are this evaluation with its seed.
    last = trained.history[-1]
    assert (last.test_loss, last.test_recon, last.test_kl) == pytest.approx((r.neg_elbo, r.recon, r.kl))
    d = r.to_dict()
    assert "diagnosis" not in d and d["neg_elbo"] == r.neg_elbo and d["kl_per_dim"] == r.kl_per_dim


def test_z_is_sampled_and_seeded_while_the_kl_is_closed_form(trained, digits):
    x = digits.x_test
    a, b, c = (
        evaluate(trained.model, x, seed=1),
        evaluate(trained.model, x, seed=1),
        evaluate(trained.model, x, seed=2),
    )
    assert a.neg_elbo == b.neg_elbo and a.recon != c.recon  # the sample depends on the seed ...
    assert a.kl == c.kl  # ... the closed-form KL does not, nor on the batch size
    small = evaluate(trained.model, x, seed=1, batch_size=7)
    assert small.kl == pytest.approx(a.kl, rel=1e-6) and small.kl_per_dim == pytest.approx(
        a.kl_per_dim, rel=1e-5
    )
    # Decoding z = mu instead of a sample would understate the loss: the sampled recon is larger
    # (on average over a few seeds; each is one sample per image).
    model = trained.model.eval()
    with torch.no_grad():
        at_mu = float(loss.recon_nll(x, model.decode(model.encode(x).mean), "bernoulli").mean())
    sampled = sum(evaluate(model, x, seed=s).recon for s in range(5)) / 5
    assert sampled > at_mu


def test_the_iwae_bound_lies_below_the_negative_elbo(trained, digits):
    r = evaluate(trained.model, digits.x_test, iwae_k=50)
    assert math.isfinite(r.iwae_nll) and r.iwae_nll < r.neg_elbo
    assert r.neg_elbo - r.iwae_nll < 5.0  # a tighter bound of the same quantity, not another figure


def test_bad_arguments_are_refused(trained, digits):
    with pytest.raises(ValueError, match=r"there are no images to evaluate\."):
        evaluate(trained.model, digits.x_test[:0])
    with pytest.raises(ValueError, match=r"iwae_k must be 0 \(off\) or a positive number of samples, got -1"):
        evaluate(trained.model, digits.x_test, iwae_k=-1)


def test_labels_count_only_for_a_conditional_model_and_the_mode_is_kept(trained, digits):
    x, y = digits.x_test[:64], digits.y_test[:64]
    model = trained.model.train()
    assert evaluate(model, x, y).neg_elbo == evaluate(model, x, torch.zeros_like(y)).neg_elbo
    assert model.training  # evaluation ran in eval mode and gave the mode back
    cond = build_model(
        ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, conditional=True), seed=0
    )
    cond.eval()
    assert evaluate(cond, x, y).kl != evaluate(cond, x, (y + 1) % 10).kl
    assert not cond.training


def test_an_autoencoder_pays_no_kl_and_a_hierarchical_model_reports_each_level(digits):
    x = digits.x_test[:100]
    ae = evaluate(
        build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, autoencoder=True)), x
    )
    assert ae.kl == 0.0 and ae.kl_levels == [] and ae.kl_per_dim == [0.0, 0.0]
    assert ae.neg_elbo == ae.recon
    deep = ModelConfig(
        input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=3, hidden_dim=16
    )
    h = evaluate(build_model(deep), x)
    assert len(h.kl_levels) == 2 and h.kl == pytest.approx(sum(h.kl_levels)) and len(h.kl_per_dim) == 2
    assert h.neg_elbo == pytest.approx(h.recon + h.kl_levels[0] + h.kl_levels[1])


def test_encode_all_is_the_encoder_in_eval_mode_a_batch_at_a_time(trained, digits):
    model = trained.model.train()
    x = digits.x_test
    q = encode_all(model, x, batch_size=50)  # 360 = 7 full batches and a part
    assert model.training and q.mean.device.type == "cpu" and q.mean.shape == q.logvar.shape == (360, 2)
    with torch.no_grad():
        ref = model.eval().encode(x)
    model.train()
    torch.testing.assert_close(q.mean, ref.mean)
    torch.testing.assert_close(q.logvar, ref.logvar)
    assert not q.deterministic
    ae = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, autoencoder=True))
    assert encode_all(ae, x[:10]).deterministic  # an autoencoder's codes are points
