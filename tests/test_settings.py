"""Each Train setting is declared once (settings.py): its range is the same for the slider, the
API's check and the command line, and lies inside what the configs accept."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from vae_explorer.cli import _parser
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.limits import Limits
from vae_explorer.settings import BY_NAME, MODEL_KEYS, NAMES, SETTINGS, TRAIN_KEYS, parse_all

NUMBERS = [s for s in SETTINGS if s.kind in ("int", "float")]


def _config(setting, value):
    """A config built with this one setting at ``value`` (the others at their defaults)."""
    if setting.group == "model":
        return ModelConfig(input_shape=(1, 28, 28), **{setting.name: value})
    return TrainConfig(**{setting.name: value})


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_each_range_lies_inside_what_the_configs_accept(setting):
    for value in (setting.lo, setting.hi, setting.default):
        assert getattr(_config(setting, value), setting.name) == value
        assert setting.parse(value) == value


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_just_outside_the_range_is_refused_with_the_setting_and_its_range(setting):
    below = setting.lo - (1 if setting.kind == "int" else max(abs(setting.lo) * 0.01, 1e-9))
    above = setting.hi + (1 if setting.kind == "int" else setting.hi * 0.01)
    for value in (below, above, math.nan, None, "abc", True):
        with pytest.raises(ValueError, match=rf"^{setting.label} must be a (whole )?number from "):
            setting.parse(value)


def test_whole_numbers_stay_exact_and_fractions_are_refused():
    seed = BY_NAME["seed"]
    assert seed.parse(2**31 - 1) == 2**31 - 1 and seed.parse(7.0) == 7
    with pytest.raises(ValueError, match=r"^Seed must be a whole number from 0 to 2147483647\.$"):
        seed.parse(3.7)


def test_a_hosted_limit_lowers_the_top_of_its_setting_only():
    limits = replace(Limits(), max_epochs=30, max_latent=8)
    assert BY_NAME["epochs"].top(limits) == 30 and BY_NAME["latent_dim"].top(limits) == 8
    assert BY_NAME["batch_size"].top(limits) == BY_NAME["batch_size"].hi  # no limit on it
    with pytest.raises(ValueError, match=r"^Epochs must be a whole number from 1 to 30\.$"):
        BY_NAME["epochs"].parse(31, limits)


def test_choices_and_switches_take_only_their_own_values():
    with pytest.raises(ValueError, match=r"^Architecture must be one of: mlp, conv, hierarchical\.$"):
        BY_NAME["arch"].parse("transformer")
    with pytest.raises(ValueError, match=r"^Conditional must be true or false\.$"):
        BY_NAME["conditional"].parse(1)
    with pytest.raises(ValueError, match=r"^Data set must be one of: digits\.$"):
        BY_NAME["dataset"].parse("imagenet", datasets=("digits",))


def test_the_defaults_make_the_apps_default_run():
    parsed = parse_all({s.name: s.default for s in SETTINGS}, datasets=("mnist-10k",))
    assert parsed.dataset == "mnist-10k"
    assert parsed.train == TrainConfig(epochs=20)  # the app trains 20 epochs, TrainConfig's own is 10
    assert ModelConfig(input_shape=(1, 28, 28), **parsed.model) == ModelConfig(input_shape=(1, 28, 28))
    assert set(MODEL_KEYS) | set(TRAIN_KEYS) | {"dataset"} == set(NAMES) and len(NAMES) == 22


def test_the_command_line_has_one_flag_per_setting_with_the_same_defaults():
    args = vars(_parser().parse_args(["train", "--out", "m.safetensors"]))
    for s in SETTINGS:
        assert args[s.name] == (s.default if s.cli_default is None else s.cli_default), s.name
    args = vars(_parser().parse_args(["train", "--out", "m.safetensors", "--hidden", "64", "--binarize"]))
    assert args["hidden_dim"] == 64 and args["binarize"] is True
    with pytest.raises(ValueError, match=r"^Batch size must be a whole number from 8 to 4096\.$"):
        parse_all({**args, "batch_size": 5000})
