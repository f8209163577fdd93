"""The β sweep: K stacked models trained at once are the K models trained one by one."""

import dataclasses
import math

import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.loss import elbo_loss
from vae_explorer.outputs import VAEOutput
from vae_explorer.sweep import BetaSweep, check_betas


def _reference(cfg: ModelConfig, tc: TrainConfig, data, beta: float):
    """One model with a plain PyTorch loop: the sweep's batches, ε, loss, clip and Adam."""
    model = build_model(cfg, tc.seed)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    n = len(data.x_train)
    for epoch in range(tc.epochs):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(tc.seed + epoch))
        eps_gen = torch.Generator().manual_seed(tc.seed + 1 + epoch)
        for b in range(math.ceil(n / tc.batch_size)):
            x = data.x_train[perm[b * tc.batch_size : (b + 1) * tc.batch_size]]
            eps = torch.randn(len(x), cfg.latent_dim, generator=eps_gen)
            q = model.encode(x)
            z = q.reparameterize(eps)
            loss = elbo_loss(
                x, VAEOutput(model.decode(z), q, z), cfg.likelihood, beta, 0.0, model.x_logvar
            ).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
    return model


@pytest.mark.parametrize(
    "settings",
    [
        {"likelihood": "bernoulli"},  # the batched-matrix-product path (stacked.py)
        {"likelihood": "gaussian"},
        {"likelihood": "gaussian", "gaussian_variance": "learned"},  # vmap: σ differs per model
        {"arch": "conv"},  # vmap
    ],
)
def test_the_stacked_models_are_the_models_trained_one_by_one(tiny_data, settings):
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, **settings)
    tc = TrainConfig(epochs=2, batch_size=16, lr=3e-3, grad_clip=5.0, seed=3)
    sweep = BetaSweep(cfg, tc, tiny_data, betas=(0.5, 1.0, 4.0))
    records = list(sweep.run())
    assert records[0].step == 0 and records[-1].epoch == pytest.approx(2.0)
    assert records[-1].step == 2 * math.ceil(len(tiny_data.x_train) / 16)
    for k, beta in enumerate(sweep.betas):
        ref = _reference(cfg, tc, tiny_data, beta).state_dict()
        got = sweep.model(k).state_dict()
        for name, value in ref.items():
            torch.testing.assert_close(got[name], value, atol=2e-5, rtol=1e-4, msg=f"{beta} {name}")


def test_a_higher_beta_buys_less_rate_for_more_distortion(tiny_data):
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)
    sweep = BetaSweep(cfg, TrainConfig(epochs=8, batch_size=32, lr=3e-3), tiny_data, betas=(0.2, 1.0, 5.0))
    last = list(sweep.run())[-1]
    rates = [p.rate for p in last.points]
    distortions = [p.distortion for p in last.points]
    assert rates[0] > rates[1] > rates[2]
    assert distortions[0] < distortions[2]
    assert not any(last.diverged)
    # each rate holds its information about the input, at most log N
    n = len(tiny_data.x_test)
    assert all(0 <= p.mutual_info <= min(p.rate, math.log(n)) + 1e-9 for p in last.points)
    assert last.points[0].mutual_info > last.points[2].mutual_info


def test_a_measured_point_is_that_models_test_rate_and_distortion(tiny_data, tiny_config):
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    sweep = BetaSweep(cfg, TrainConfig(epochs=1, batch_size=32), tiny_data, betas=(1.0, 2.0))
    last = list(sweep.run())[-1]
    model = sweep.model(1)
    x = tiny_data.x_test[: len(sweep._x_eval)]
    with torch.no_grad():
        q = model.encode(x)
        z = q.reparameterize(sweep._eps_eval)
        terms = elbo_loss(x, VAEOutput(model.decode(z), q, z), cfg.likelihood, 2.0)
    assert last.points[1].rate == pytest.approx(float(terms.kl), rel=1e-5)
    assert last.points[1].distortion == pytest.approx(float(terms.recon), rel=1e-5)


def test_a_non_finite_step_leaves_that_model_alone(tiny_data):
    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16)
    sweep = BetaSweep(cfg, TrainConfig(epochs=1, batch_size=32), tiny_data, betas=(1.0, 2.0))
    before = sweep.model(0).state_dict()
    grads = {k: torch.zeros_like(v) for k, v in sweep.params.items()}
    name = next(iter(grads))
    grads[name][0].fill_(float("nan"))  # model 0's gradient is not finite, model 1's is 0
    sweep._apply(grads, clip=1.0)
    assert sweep.diverged == [True, False]
    for key, value in sweep.model(0).state_dict().items():
        assert torch.equal(value, before[key])


def test_bad_sweeps_are_refused(tiny_data):
    with pytest.raises(ValueError, match="must differ"):
        check_betas([1, 1])
    with pytest.raises(ValueError, match="above 0"):
        check_betas([0.0, 1.0])
    with pytest.raises(ValueError, match="1 to 12"):
        check_betas([])
    with pytest.raises(ValueError, match="one-level, unconditional"):
        BetaSweep(ModelConfig(input_shape=(1, 8, 8), arch="hierarchical"), TrainConfig(), tiny_data)
    sweep = BetaSweep(ModelConfig(input_shape=(1, 8, 8)), TrainConfig(epochs=1), tiny_data, betas=(1.0,))
    with pytest.raises(ValueError, match="models 0 to 0"):
        sweep.model(1)


def test_the_distortion_floor_is_what_a_perfect_reconstruction_pays(tiny_data):
    """Bernoulli: Σ_i H(x_i) (0 for black-and-white images); Gaussian of fixed σ: ½ P log 2πσ²."""
    tc = TrainConfig(epochs=1)
    sweep = BetaSweep(ModelConfig(input_shape=(1, 8, 8)), tc, tiny_data, betas=(1.0,))
    x = sweep._x_eval.double().flatten(1).clamp(1e-12, 1 - 1e-12)
    entropy = -(x * x.log() + (1 - x) * (1 - x).log()).sum(dim=1).mean()
    assert sweep.distortion_floor() == pytest.approx(float(entropy))
    # no decoder does better: the cross-entropy of any logits is at least the entropy
    last = list(sweep.run())[-1]
    assert last.points[0].distortion > sweep.distortion_floor()
    sweep._x_eval = (sweep._x_eval > 0.5).float()
    assert sweep.distortion_floor() == pytest.approx(0.0, abs=1e-9)
    cfg = ModelConfig(input_shape=(1, 8, 8), likelihood="gaussian", gaussian_std=0.2)
    fixed = BetaSweep(cfg, tc, tiny_data, betas=(1.0,)).distortion_floor()
    assert fixed == pytest.approx(0.5 * 64 * math.log(2 * math.pi * 0.04))
    learned = dataclasses.replace(cfg, gaussian_variance="learned")
    assert BetaSweep(learned, tc, tiny_data, betas=(1.0,)).distortion_floor() is None


def test_a_sweep_too_large_for_a_shared_server_is_refused(tiny_data):
    with pytest.raises(ValueError, match="models × batch size may be at most"):
        BetaSweep(
            ModelConfig(input_shape=(1, 8, 8)), TrainConfig(batch_size=4096), tiny_data, betas=(1.0, 2.0, 4.0)
        )
