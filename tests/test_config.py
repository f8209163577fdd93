"""The configurations (vae_explorer/config.py): ModelConfig and TrainConfig validate every field
with a sentence a student can act on and round-trip through JSON; RunInfo, a checkpoint's record of
a run, is checked part by part when read back."""

from __future__ import annotations

import json

import pytest

from tests.conftest import epoch_record
from vae_explorer.config import ModelConfig, RunInfo, TrainConfig


def _cfg(**kw) -> ModelConfig:
    return ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=64, **kw)


# --------------------------------------------------------------------------------------------
# ModelConfig validation and serialisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, r"latent_dim must be between 1 and 512, got 0\."),
        ({"latent_dim": 1e9}, r"latent_dim must be between 1 and 512, got 1000000000\."),
        ({"latent_dim": 10**9}, r"latent_dim must be between 1 and 512, got 1000000000\."),
        ({"latent_dim": "abc"}, r"latent_dim must be a whole number, got 'abc'"),
        ({"latent_dim": 2.5}, r"latent_dim must be a whole number, got 2\.5"),
        ({"latent_dim": True}, r"latent_dim must be a whole number, got True"),
        ({"gaussian_std": float("nan")}, r"gaussian_std must be a finite number, got nan"),
        ({"gaussian_std": float("inf")}, r"gaussian_std must be a finite number, got inf"),
        ({"gaussian_std": 0.0}, r"gaussian_std must be in \(0\.0, 10\.0\], got 0\."),
        ({"gaussian_std": -1.0}, r"gaussian_std must be in \(0\.0, 10\.0\], got -1\."),
        (
            {"arch": "conv", "input_shape": (1, 10, 10)},
            r"conv architecture needs height and width divisible by 4",
        ),
        ({"arch": "transformer"}, r"arch must be one of mlp, conv, hierarchical; got 'transformer'"),
        ({"likelihood": "poisson"}, r"likelihood must be one of bernoulli, gaussian; got 'poisson'"),
        ({"gaussian_variance": "sometimes"}, r"gaussian_variance must be one of fixed, learned"),
        ({"input_shape": (1, 8)}, r"input_shape must be \(channels, height, width\), got \(1, 8\)"),
        ({"input_shape": (0, 8, 8)}, r"input channels must be between 1 and 4, got 0"),
        ({"input_shape": (1, 200, 200)}, r"200×200 pixels are larger than the 16384-pixel limit"),
        ({"hidden_dim": -3}, r"hidden_dim must be between 1 and 8192, got -3"),
        ({"num_classes": 0}, r"num_classes must be between 1 and 1000, got 0"),
        ({"conditional": "yes"}, r"conditional must be true or false, got 'yes'"),
        ({"clamp_logvar": 1}, r"clamp_logvar must be true or false, got 1"),
        ({"logvar_min": 1.0}, r"logvar_min must be in \[-30\.0, 0\.0\], got 1\."),
        ({"logvar_max": -1.0}, r"logvar_max must be in \[0\.0, 30\.0\], got -1\."),
        ({"logvar_min": float("nan")}, r"logvar_min must be a finite number, got nan"),
    ],
)
def test_model_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_model_config_accepts_integral_floats_and_lists() -> None:
    cfg = ModelConfig(input_shape=[1, 8.0, 8], latent_dim=4.0)
    assert cfg.latent_dim == 4 and isinstance(cfg.latent_dim, int)
    assert cfg.input_shape == (1, 8, 8)
    assert cfg.input_dim == 64


def test_model_config_round_trip() -> None:
    cfg = ModelConfig(
        input_shape=(3, 12, 16),
        arch="conv",
        latent_dim=7,
        hidden_dim=33,
        likelihood="gaussian",
        gaussian_variance="learned",
        gaussian_std=0.25,
        conditional=True,
        num_classes=5,
        logvar_min=-8.0,
        logvar_max=6.0,
        clamp_logvar=False,
    )
    d = cfg.to_dict()
    assert d["input_shape"] == [3, 12, 16]
    back = ModelConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg
    assert back.input_shape == (3, 12, 16)


def test_model_config_from_dict_rejects_unknown_fields_and_non_dicts() -> None:
    d = ModelConfig().to_dict()
    d["dropout"] = 0.5
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig.from_dict(d)
    with pytest.raises(ValueError, match="ModelConfig must be a JSON object, got list"):
        ModelConfig.from_dict([1, 2, 3])
    with pytest.raises(ValueError, match="latent_dim must be between 1 and 512, got -1"):
        ModelConfig.from_dict({"latent_dim": -1})


def test_autoencoder_and_hierarchical_do_not_mix():
    with pytest.raises(ValueError, match="autoencoder"):
        _cfg(arch="hierarchical", autoencoder=True)
    with pytest.raises(ValueError, match="autoencoder must be true or false, got 'yes'"):
        _cfg(autoencoder="yes")


# --------------------------------------------------------------------------------------------
# TrainConfig validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lr", 0.0, r"learning rate must be in \(0\.0, 1000000\.0\], got 0\."),
        ("lr", float("nan"), r"learning rate must be a finite number, got nan"),
        ("lr", float("inf"), r"learning rate must be a finite number, got inf"),
        ("beta", -1.0, r"beta must be in \[0\.0, 1000000\.0\], got -1\."),
        ("epochs", 0, r"epochs must be between 1 and 100000, got 0"),
        ("epochs", 2.5, r"epochs must be a whole number, got 2\.5"),
        ("batch_size", "abc", r"batch_size must be a whole number, got 'abc'"),
        ("batch_size", None, r"batch_size must be a whole number, got None"),
        ("free_bits", -0.1, r"free_bits must be in \[0\.0, 100\.0\], got -0\.1"),
        ("kl_schedule", "cosine", r"kl_schedule must be one of constant, linear, cyclical; got 'cosine'"),
        ("seed", -1, r"seed must be between 0 and 2147483647, got -1"),
        ("grad_clip", 1e308 * 10, r"grad_clip must be a finite number, got inf"),
    ],
)
def test_train_config_rejects(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kl_schedule": "exponential"}, r"kl_schedule must be one of constant, linear, cyclical"),
        ({"cycle_ratio": 0.0}, r"cycle_ratio must be in \(0\.0, 1\.0\], got 0\."),
        ({"cycle_ratio": 1.5}, r"cycle_ratio must be in \(0\.0, 1\.0\], got 1\.5"),
        ({"warmup_epochs": -1.0}, r"warmup_epochs must be in \[0\.0, 100000\.0\], got -1\."),
        ({"beta": -0.5}, r"beta must be in \[0\.0, 1000000\.0\], got -0\.5"),
        ({"beta": float("nan")}, r"beta must be a finite number, got nan"),
        ({"cycles": 0}, r"cycles must be between 1 and 10000, got 0"),
    ],
)
def test_train_config_rejects_bad_schedule_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


# --------------------------------------------------------------------------------------------
# RunInfo: what a checkpoint records beside its weights
# --------------------------------------------------------------------------------------------


def test_run_info_round_trips_through_json_with_typed_records():
    run = RunInfo(
        dataset="digits",
        class_names=["0", "1", "2"],
        train=TrainConfig(epochs=3, beta=2.0, kl_schedule="linear"),
        history=[epoch_record(epoch=1, step=5), epoch_record(epoch=2, step=10, test_kl=0.5)],
        step=10,
        epoch=2,
    )
    back = RunInfo.from_dict(json.loads(json.dumps(run.to_dict())), latent_dim=2)
    assert back == run
    assert back.train.kl_schedule == "linear" and back.history[1].test_kl_levels == [0.5]


def test_run_info_from_an_empty_object_takes_the_defaults():
    run = RunInfo.from_dict({})
    assert run.train == TrainConfig() and run.history == [] and (run.step, run.epoch) == (0, 0)
    assert run.class_names == [] and run.dataset == ""


@pytest.mark.parametrize(
    "data, message",
    [
        ("digits", r"run metadata is not an object"),
        ({"class_names": "0123"}, r"class_names must be a list"),
        ({"step": -1}, r"step must be a whole number of at least 0, got -1"),
        ({"epoch": True}, r"epoch must be a whole number of at least 0, got True"),
        ({"step": 2**53}, r"step must be a whole number of at least 0"),
        ({"train": {"epochs": 0}}, r"epochs must be between 1 and 100000, got 0"),
        ({"train": {"layers": 3}}, r"TrainConfig has unknown fields: layers"),
        ({"history": "abc"}, r"the training history must be a list of epoch records"),
    ],
)
def test_run_info_from_dict_refuses_each_bad_part(data, message):
    with pytest.raises(ValueError, match=message):
        RunInfo.from_dict(data)


def test_run_info_history_must_fit_the_models_latent():
    raw = RunInfo(history=[epoch_record(kl_per_dim=[0.5, 0.5])]).to_dict()
    assert len(RunInfo.from_dict(raw, latent_dim=2).history) == 1
    with pytest.raises(ValueError, match=r"a training-history record has an invalid 'kl_per_dim'"):
        RunInfo.from_dict(raw, latent_dim=3)
