"""The Train tab's controls follow the one table (settings.py): each component's range, default
and label, and the names and order of the Train endpoints' API arguments."""

from __future__ import annotations

import gradio as gr
import pytest

from vae_explorer.settings import NAMES, SETTINGS
from vae_explorer.ui import build_app
from vae_explorer.ui.common import LIMITS
from vae_explorer.ui.train_settings import control, parse_settings


def test_each_component_has_its_settings_range_default_and_label():
    with gr.Blocks():
        made = {s.name: control(s.name) for s in SETTINGS}
    for s in SETTINGS:
        c = made[s.name]
        assert (c.label, c.info) == (s.label, s.help)
        if s.kind in ("int", "float") and s.step is not None:
            assert isinstance(c, gr.Slider)
            assert (c.minimum, c.maximum, c.step, c.value) == (s.lo, s.top(LIMITS), s.step, s.default)
        elif s.kind in ("int", "float"):
            assert isinstance(c, gr.Number) and c.value == s.default
        elif s.kind == "choice":
            assert isinstance(c, gr.Radio) and [v for _, v in c.choices] == list(s.choices)
        elif s.kind == "bool":
            assert isinstance(c, gr.Checkbox) and c.value is s.default


def test_the_train_endpoints_take_one_argument_per_setting_in_table_order():
    api = build_app().get_api_info()["named_endpoints"]
    for name in ("/train", "/continue_training", "/reset"):
        params = api[name]["parameters"]
        assert [p["parameter_name"] for p in params] == list(NAMES)
        assert [p["parameter_default"] for p in params] == [s.default for s in SETTINGS]
    assert [p["parameter_name"] for p in api["/save_checkpoint"]["parameters"]] == ["lecture", *NAMES]


def test_a_value_above_the_hosted_limit_is_refused_by_the_check_behind_the_api():
    values = {s.name: s.default for s in SETTINGS} | {"epochs": LIMITS.max_epochs + 1}
    with pytest.raises(gr.Error, match="Epochs must be a whole number") as info:
        parse_settings(values)
    assert info.value.message == f"Epochs must be a whole number from 1 to {LIMITS.max_epochs}."
    assert parse_settings({**values, "epochs": LIMITS.max_epochs})[2].epochs == LIMITS.max_epochs
