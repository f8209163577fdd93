"""The training loop: reproducibility, stop/resume consistency, the NaN guard, epoch records."""

from __future__ import annotations

import math

import pytest
import torch

from vae_explorer import trainer as trainer_mod
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.device import usable_cores
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.trainer import Trainer


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _finite(model) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in model.state_dict().values())


def _records(trainer, kind, **kw):
    return [r for r in trainer.run(**kw) if isinstance(r, kind)]


def test_same_seed_same_weights_different_seed_different(tiny_data, tiny_config):
    def train(seed):
        cfg = TrainConfig(epochs=2, batch_size=16, seed=seed)
        t = Trainer(build_model(tiny_config, seed), tiny_data, cfg)
        list(t.run())
        return _weights(t.model)

    a, b, c = train(0), train(0), train(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_stop_request_between_steps_keeps_model_consistent(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=3, batch_size=8))
    seen = []
    for rec in t.run():
        seen.append(rec)
        if isinstance(rec, StepRecord) and rec.step == 5:
            t.request_stop()
    assert isinstance(seen[-1], StopRecord) and not seen[-1].rolled_back
    assert t.step == 5 and t.epoch == 0 and t.history == []
    # Adam's own step count agrees with the trainer's: no half-applied step.
    assert all(int(s["step"]) == 5 for s in t.optimizer.state.values())
    # Calling run() again continues from where it stopped: the stopped epoch's last 3 batches.
    epochs = _records(t, EpochRecord, epochs=1)
    assert [e.epoch for e in epochs] == [1] and t.step == 8


def test_closing_the_generator_mid_epoch_is_safe(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=2, batch_size=8))
    gen = t.run()
    for rec in gen:
        if isinstance(rec, StepRecord) and rec.step == 3:
            break
    gen.close()  # what Gradio does when a user presses Stop or closes the tab
    assert t.step == 3 and _finite(t.model)
    assert all(int(s["step"]) == 3 for s in t.optimizer.state.values())


def test_epoch_record_is_consistent(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=2, batch_size=16))
    epochs = _records(t, EpochRecord)
    assert [e.epoch for e in epochs] == [1, 2]
    e = epochs[-1]
    assert e.step == 2 * math.ceil(64 / 16)
    assert e.test_loss == pytest.approx(e.test_recon + e.test_kl, rel=1e-6)
    assert e.train_neg_elbo == pytest.approx(e.train_recon + e.train_kl, rel=1e-6)
    assert e.train_loss == pytest.approx(e.train_neg_elbo, rel=1e-6)  # β = 1, no free bits
    assert len(e.kl_per_dim) == tiny_config.latent_dim
    assert sum(e.kl_per_dim) == pytest.approx(e.test_kl, rel=1e-5)
    assert e.seconds > 0 and e.images_per_s == pytest.approx(64 / e.seconds)
    assert t.history == epochs  # the history is the records the trainer yielded


def test_beta_schedule_reaches_the_step_records(tiny_data, tiny_config):
    cfg = TrainConfig(epochs=2, batch_size=16, kl_schedule="linear", warmup_epochs=2, beta=1.0)
    t = Trainer(build_model(tiny_config), tiny_data, cfg)
    betas = [r.beta for r in t.run() if isinstance(r, StepRecord)]
    assert betas[0] == 0.0 and betas == sorted(betas) and betas[-1] == pytest.approx(7 / 8)


def test_training_learns_digits():
    data = load_dataset("digits")
    model = build_model(ModelConfig(input_shape=data.image_shape, latent_dim=2, hidden_dim=128))
    t = Trainer(model, data, TrainConfig(epochs=8, batch_size=64))
    epochs = _records(t, EpochRecord)
    # An untrained decoder costs ~44 nats on 8×8 digits; a trained one far less.
    assert epochs[0].test_loss > epochs[-1].test_loss + 3
    assert epochs[-1].active_units == 2 and not epochs[-1].collapsed


@pytest.mark.parametrize("lr, clamp", [(1e5, True), (10.0, False)])
def test_absurd_learning_rate_rolls_back_to_finite_weights(lr, clamp):
    data = load_dataset("digits")
    cfg = ModelConfig(input_shape=data.image_shape, latent_dim=2, hidden_dim=64, clamp_logvar=clamp)
    t = Trainer(build_model(cfg), data, TrainConfig(epochs=3, batch_size=64, lr=lr, grad_clip=0.0))
    records = list(t.run())
    stop = records[-1]
    assert isinstance(stop, StopRecord) and stop.rolled_back
    assert "rolled back" in stop.reason and "learning rate" in stop.reason
    assert _finite(t.model)
    assert sum(r.skipped for r in records if isinstance(r, StepRecord)) == 5


def test_nan_guard_skips_then_rolls_back_to_the_epoch_start(tiny_data, tiny_config, monkeypatch):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=3, batch_size=8, max_bad_steps=3))
    list(t.run(epochs=1))
    start_of_epoch2 = _weights(t.model)
    real_loss = trainer_mod.elbo_loss
    calls = {"n": 0}

    def poisoned(*args, **kw):
        terms = real_loss(*args, **kw)
        calls["n"] += 1
        if calls["n"] > 2:  # two good steps, then NaN forever
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(trainer_mod, "elbo_loss", poisoned)
    records = list(t.run(epochs=1))
    steps = [r for r in records if isinstance(r, StepRecord)]
    assert [r.skipped for r in steps] == [False, False, True, True, True]
    assert isinstance(records[-1], StopRecord) and records[-1].rolled_back
    now = _weights(t.model)
    assert all(torch.equal(now[k], start_of_epoch2[k]) for k in now)
    assert t.step == 8 and t.epoch == 1


def test_a_single_bad_step_is_skipped_and_training_goes_on(tiny_data, tiny_config, monkeypatch):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=1, batch_size=8))
    real_loss = trainer_mod.elbo_loss
    calls = {"n": 0}

    def one_bad(*args, **kw):
        terms = real_loss(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 3:
            terms.loss = terms.loss * float("inf")
        return terms

    monkeypatch.setattr(trainer_mod, "elbo_loss", one_bad)
    records = list(t.run())
    assert isinstance(records[-1], EpochRecord) and records[-1].skipped_steps == 1
    assert t.step == 7 and _finite(t.model)


def test_binarize_trains_on_binary_batches(tiny_data, tiny_config, monkeypatch):
    seen = []
    real_loss = trainer_mod.elbo_loss

    def spy(x, *args, **kw):
        seen.append(x.detach().clone())
        return real_loss(x, *args, **kw)

    monkeypatch.setattr(trainer_mod, "elbo_loss", spy)
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=1, batch_size=8, binarize=True))
    list(t.run())
    batches = torch.cat(seen)
    assert set(batches.unique().tolist()) <= {0.0, 1.0}
    assert set(t.x_test.unique().tolist()) <= {0.0, 1.0}
    # A fresh draw per batch: the mean of the draws tracks the grey levels.
    assert abs(batches.mean().item() - tiny_data.x_train.mean().item()) < 0.05


def test_conditional_training_uses_labels(tiny_data, tiny_config):
    cfg = ModelConfig(**{**tiny_config.to_dict(), "conditional": True, "input_shape": (1, 8, 8)})
    t = Trainer(build_model(cfg), tiny_data, TrainConfig(epochs=1, batch_size=16))
    assert len(_records(t, EpochRecord)) == 1


def test_bad_trainer_inputs_are_refused(tiny_data, tiny_config):
    with pytest.raises(ValueError, match="larger than the 64 training images"):
        Trainer(build_model(tiny_config), tiny_data, TrainConfig(batch_size=65))
    wrong = ModelConfig(input_shape=(1, 28, 28), latent_dim=2, hidden_dim=8)
    with pytest.raises(ValueError, match="expects images of shape"):
        Trainer(build_model(wrong), tiny_data, TrainConfig(batch_size=8))
    tiny_data.has_labels = False
    cond = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8, conditional=True, num_classes=3)
    with pytest.raises(ValueError, match="needs labels"):
        Trainer(build_model(cond), tiny_data, TrainConfig(batch_size=8))


def test_one_level_records_have_one_kl_level(tiny_data, tiny_config):
    t = Trainer(build_model(tiny_config), tiny_data, TrainConfig(epochs=1, batch_size=16))
    records = list(t.run())
    assert all(r.kl_levels == [r.kl] for r in records if isinstance(r, StepRecord))
    assert records[-1].test_kl_levels == [pytest.approx(records[-1].test_kl, rel=1e-5)]


def test_training_on_the_cpu_times_each_thread_setting_and_keeps_one_of_them(tiny_data, tiny_config):
    before = torch.get_num_threads()
    try:
        trainer = Trainer(build_model(tiny_config, seed=0), tiny_data, TrainConfig(epochs=6, batch_size=8))
        _records(trainer, StepRecord)
        tuner = trainer.thread_tuner
        assert tuner is not None and tuner.candidates == ((usable_cores(), 1) if usable_cores() > 1 else (1,))
        # Both were timed; which one wins depends on this machine's load (tests/test_device.py
        # checks the choice itself, with made-up step times).
        assert set(tuner.times) == set(tuner.candidates) and tuner.choice in tuner.candidates
        one_epoch = TrainConfig(epochs=1, batch_size=8)
        fixed = Trainer(build_model(tiny_config, seed=0), tiny_data, one_epoch, tune_threads=False)
        torch.set_num_threads(1)
        _records(fixed, StepRecord)
        assert fixed.thread_tuner is None and torch.get_num_threads() == 1  # left as it was set
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("arch", ["mlp", "hierarchical", "conv"])
def test_the_thread_count_changes_no_bit_of_a_tuned_architecture(arch):
    """The ThreadTuner may switch threads at any step, so a tuned model must train to the same
    bits on one thread as on several; conv is not tuned because its kernels are not so."""
    if torch.get_num_threads() < 2 and usable_cores() < 2:
        pytest.skip("one core: nothing to compare")
    data = load_dataset("digits")
    config = ModelConfig(input_shape=data.image_shape, arch=arch, latent_dim=4, hidden_dim=32)
    before = torch.get_num_threads()
    weights = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            trainer = Trainer(build_model(config, seed=0), data, TrainConfig(epochs=1, batch_size=64))
            _records(trainer, StepRecord)
            assert (trainer.thread_tuner is None) == (arch not in trainer_mod.THREAD_INVARIANT)
            weights[n] = _weights(trainer.model)
    finally:
        torch.set_num_threads(before)
    if arch in trainer_mod.THREAD_INVARIANT:
        assert all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])
