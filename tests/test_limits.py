"""Hosted limits (vae_explorer/limits.py): read from environment variables (tighter defaults on a
Hugging Face Space), enforced on the configs a user asks for and on uploaded models, and a data
set's training part cut to its first images."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_dataset
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.limits import HOSTED, Limits, limit_data, on_space

LIMIT_VARIABLES = ("VAE_EXPLORER_MAX_EPOCHS", "VAE_EXPLORER_MAX_TRAIN_IMAGES", "VAE_EXPLORER_MAX_HIDDEN",
                   "VAE_EXPLORER_MAX_LATENT", "SPACE_ID", "SYSTEM")  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch):
    """No limit variable set and not on a Space, whatever the machine running the tests has."""
    for name in LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


SMALL = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32)


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_EPOCHS", "5")
    limits = Limits.from_env()
    assert limits.max_epochs == 5
    with pytest.raises(ValueError, match="at most 5 epochs"):
        limits.check(SMALL, TrainConfig(epochs=6))
    monkeypatch.setenv("VAE_EXPLORER_MAX_EPOCHS", "lots")
    with pytest.raises(ValueError, match="VAE_EXPLORER_MAX_EPOCHS"):
        Limits.from_env()


def test_a_space_gets_hosted_limits_unless_variables_say_otherwise(monkeypatch):
    from vae_explorer.limits import HOSTED

    monkeypatch.setenv("SPACE_ID", "someone/vae-explorer")
    assert Limits.from_env() == HOSTED
    monkeypatch.setenv("VAE_EXPLORER_MAX_EPOCHS", "80")
    assert Limits.from_env().max_epochs == 80 and Limits.from_env().max_hidden == HOSTED.max_hidden
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.delenv("VAE_EXPLORER_MAX_EPOCHS")
    assert Limits.from_env() == Limits()


def test_blank_variables_give_the_defaults_and_values_below_one_are_refused(clean_env):
    clean_env.setenv("VAE_EXPLORER_MAX_HIDDEN", "  ")
    assert Limits.from_env() == Limits() and not on_space()
    clean_env.setenv("VAE_EXPLORER_MAX_LATENT", "0")
    with pytest.raises(ValueError, match=r"VAE_EXPLORER_MAX_LATENT must be at least 1, got 0"):
        Limits.from_env()
    clean_env.setenv("VAE_EXPLORER_MAX_LATENT", "2.5")
    with pytest.raises(ValueError, match=r"VAE_EXPLORER_MAX_LATENT must be a whole number, got '2\.5'"):
        Limits.from_env()


def test_a_space_is_also_recognised_by_its_system_variable(clean_env):
    clean_env.setenv("SYSTEM", "spaces")
    assert on_space() and Limits.from_env() == HOSTED
    clean_env.setenv("SYSTEM", "laptop")
    assert not on_space()


def test_models_wider_or_deeper_than_the_limits_are_refused():
    limits = Limits(max_epochs=10, max_hidden=64, max_latent=4)
    ok = ModelConfig(input_shape=(1, 8, 8), latent_dim=4, hidden_dim=64, bottom_latent_dim=100)
    limits.check(ok, TrainConfig(epochs=10))  # at the limits is fine; z₁ only counts when hierarchical
    with pytest.raises(ValueError, match=r"the hidden layer may have at most 64 units here"):
        limits.check_model(ModelConfig(input_shape=(1, 8, 8), hidden_dim=65))
    with pytest.raises(ValueError, match=r"the latent may have at most 4 dimensions here"):
        limits.check(ModelConfig(input_shape=(1, 8, 8), latent_dim=5, hidden_dim=16), TrainConfig(epochs=1))
    deep = ModelConfig(
        input_shape=(1, 8, 8), arch="hierarchical", latent_dim=2, bottom_latent_dim=5, hidden_dim=16
    )
    with pytest.raises(ValueError, match=r"the lower latent z₁ may have at most 4 dimensions here"):
        limits.check_model(deep)
    with pytest.raises(ValueError, match=r"at most 10 epochs per run here, got 11"):
        limits.check(ok, TrainConfig(epochs=11))


def test_limit_data_keeps_a_prefix_of_the_training_set_and_the_whole_test_set():
    data = make_dataset(n_train=64, n_test=32)
    data.has_labels = False
    cut = limit_data(data, 10)
    assert torch.equal(cut.x_train, data.x_train[:10]) and torch.equal(cut.y_train, data.y_train[:10])
    assert cut.x_test is data.x_test and cut.y_test is data.y_test
    assert (cut.name, cut.class_names, cut.has_labels) == (data.name, data.class_names, False)
    assert limit_data(data, 64) is data and limit_data(data, 1000) is data  # nothing to cut: unchanged
