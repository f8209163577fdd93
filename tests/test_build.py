"""Building a model from its config (vae_explorer/build.py): the architecture picks the class,
the seed fixes the weights without touching the global random state, and builds in several
threads at once still get exactly their seeds' weights."""

from __future__ import annotations

import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.hierarchical import HierarchicalVAE
from vae_explorer.model import VAE


def _same_weights(a: VAE, b: VAE) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_build_model_is_reproducible(arch: str) -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), arch=arch, latent_dim=3, hidden_dim=16)
    assert _same_weights(build_model(cfg, seed=3), build_model(cfg, seed=3))
    assert not _same_weights(build_model(cfg, seed=3), build_model(cfg, seed=4))


def test_build_model_leaves_global_rng_alone(tiny_config: ModelConfig) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(8)
    torch.manual_seed(1234)
    build_model(tiny_config, seed=99)
    assert torch.equal(torch.rand(8), expected)
    # and the global state does not leak into the weights either
    torch.manual_seed(1)
    a = build_model(tiny_config, seed=5)
    torch.manual_seed(2)
    b = build_model(tiny_config, seed=5)
    assert _same_weights(a, b)


def test_models_built_at_once_in_threads_still_get_their_seeds_weights():
    """Sessions build models concurrently; each must still get exactly its seed's weights."""
    import threading

    from vae_explorer.build import build_model
    from vae_explorer.config import ModelConfig

    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=256)
    expected = {s: build_model(cfg, seed=s).state_dict() for s in range(8)}
    got: dict[int, dict] = {}
    barrier = threading.Barrier(8)

    def build(seed: int) -> None:
        barrier.wait()
        for _ in range(5):
            got[seed] = build_model(cfg, seed=seed).state_dict()
            if any(not torch.equal(got[seed][k], expected[seed][k]) for k in expected[seed]):
                return

    threads = [threading.Thread(target=build, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(8):
        assert all(torch.equal(got[s][k], expected[s][k]) for k in expected[s]), s


@pytest.mark.parametrize(("arch", "cls"), [("mlp", VAE), ("conv", VAE), ("hierarchical", HierarchicalVAE)])
def test_the_arch_picks_the_model_class_and_the_model_keeps_its_config(arch: str, cls: type) -> None:
    cfg = ModelConfig(input_shape=(1, 8, 8), arch=arch, latent_dim=2, bottom_latent_dim=3, hidden_dim=16)
    model = build_model(cfg, seed=0)
    assert type(model) is cls and model.config is cfg and model.latent_dim == 2
    assert next(model.parameters()).device == torch.device("cpu")
    # A hierarchical model is seeded like the others: its seed, and only its seed, fixes the weights.
    assert _same_weights(model, build_model(cfg, seed=0))
    assert not _same_weights(model, build_model(cfg, seed=1))
