"""The plain autoencoder option: z = mu, no KL; its codes are points, not distributions, and
nothing pulls them towards N(0, I) — which the diagnostics measure."""

from __future__ import annotations

import pytest
import torch

from vae_explorer import loss
from vae_explorer.build import build_model
from vae_explorer.checkpoint import load_checkpoint, save_checkpoint
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.generate import reconstruct
from vae_explorer.records import EpochRecord, StepRecord
from vae_explorer.trainer import Trainer


def _cfg(**kw) -> ModelConfig:
    return ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=64, **kw)


def test_the_autoencoder_is_deterministic_and_pays_no_kl():
    model = build_model(_cfg(autoencoder=True))
    x = torch.rand((8, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    a = model(x, None, torch.Generator().manual_seed(1))
    b = model(x, None, torch.Generator().manual_seed(2))  # another ε changes nothing
    assert torch.equal(a.recon, b.recon) and torch.equal(a.z, a.mu) and a.levels == []
    terms = loss.elbo_loss(x, a, "bernoulli", beta=4.0, free_bits=1.0)
    torch.testing.assert_close(terms.loss, terms.recon)  # β and free bits have nothing to act on
    assert terms.kl.item() == 0.0 and terms.kl_levels == []
    torch.testing.assert_close(terms.recon, loss.recon_nll(x, a.recon, "bernoulli").mean())
    with pytest.raises(ValueError, match="autoencoder"):
        loss.iwae_nll(model, x, k=5)


def test_the_same_weights_as_a_vae_give_the_same_mu_and_decoder():
    vae, ae = build_model(_cfg(), seed=3), build_model(_cfg(autoencoder=True), seed=3)
    x = torch.rand((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vae.encode(x).mean, ae.encode(x).mean)
    torch.testing.assert_close(vae.reconstruct(x), ae(x).recon)  # decode(mu) in both


def test_trained_autoencoder_codes_sit_far_from_the_prior_and_vae_codes_near_it(tmp_path):
    """The comparison's figure: the aggregate-posterior gap to N(0, I). Same data, same size,
    same seed and steps; only the KL term differs."""
    digits = load_dataset("digits")
    results = {}
    for name, kw in (("ae", {"autoencoder": True}), ("vae", {})):
        t = Trainer(build_model(_cfg(**kw), seed=0), digits, TrainConfig(epochs=15, batch_size=64))
        records = list(t.run())
        last = [r for r in records if isinstance(r, EpochRecord)][-1]
        steps = [r for r in records if isinstance(r, StepRecord)]
        results[name] = (t, last, steps)
    ae_t, ae, ae_steps = results["ae"]
    _, vae, _ = results["vae"]
    assert all(s.kl == 0.0 and s.kl_levels == [] for s in ae_steps)
    assert ae.test_kl == 0.0 and ae.test_kl_levels == [] and not ae.collapsed
    assert ae.test_recon < vae.test_recon  # nothing to pay for: it reconstructs better ...
    assert ae.prior_gap > 10 * vae.prior_gap and ae.prior_gap > 1.0  # ... but ignores the prior
    # A checkpoint of it loads and reconstructs the same.
    path = save_checkpoint(tmp_path / "ae.safetensors", ae_t.model, ae_t.run_info())
    ck = load_checkpoint(path)
    assert ck.model.config.autoencoder
    x = digits.x_test[:5]
    torch.testing.assert_close(reconstruct(ck.model, x), reconstruct(ae_t.model, x))
