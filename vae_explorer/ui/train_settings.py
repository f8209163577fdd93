"""The Train tab's settings as the UI meets them: each control built from its one declaration
(``vae_explorer.settings.SETTINGS``), and the checks of values sent from anywhere (the API may
send anything), shared by training, saving a session and restoring one."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import gradio as gr

from ..config import TrainConfig
from ..data import availability, dataset_names
from ..settings import BY_NAME, NAMES, parse_all
from .common import LIMITS, Refused


def dataset_choices() -> list[tuple[str, str]]:
    """The registered data sets as the Data set menu lists them: (label with its note, name)."""
    out = []
    for name in dataset_names():
        ok, note = availability(name)
        out.append((name if ok else f"{name} ({note})", name))
    return out


def control(name: str, **extra) -> gr.components.Component:
    """The component of one setting: a slider where it has a step, a number box otherwise, a
    radio for a choice, a checkbox for a switch; ``extra`` for layout (elem_id, visible, …)."""
    s = BY_NAME[name]
    common = {"label": s.label, "info": s.help, **extra}
    if s.kind == "dataset":
        return gr.Dropdown(dataset_choices(), value=s.default, **common)
    if s.kind == "choice":
        return gr.Radio(list(s.choices), value=s.default, **common)
    if s.kind == "bool":
        return gr.Checkbox(s.default, **common)
    if s.step is not None:
        return gr.Slider(s.lo, s.top(LIMITS), value=s.default, step=s.step, **common)
    return gr.Number(s.default, precision=0 if s.kind == "int" else None, **common)


def parse(name: str, value) -> object:
    """One setting's untrusted value, checked, or a gr.Error naming it and what it takes."""
    try:
        return BY_NAME[name].parse(value, LIMITS, tuple(dataset_names()))
    except ValueError as err:
        raise Refused(str(err)) from None  # the label leads as written ("β", not "Β")


def parse_settings(s: dict, datasets: list[str] | None = None) -> tuple[str, dict, TrainConfig]:
    """The controls' values as sent (untrusted) → (data set, model settings, TrainConfig).
    ``datasets``: the session's (Workspace.datasets: its own upload too); default the registered."""
    try:
        p = parse_all(s, LIMITS, tuple(dataset_names() if datasets is None else datasets))
    except ValueError as err:
        raise Refused(str(err)) from None
    return p.dataset, p.model, p.train


def restorable(session: dict) -> tuple[dict, int]:
    """The saved settings that pass today's checks (limits may differ from where the file was
    made), and how many were dropped."""
    good, dropped = {}, 0
    for key, value in session.items():
        if key in BY_NAME:
            try:
                good[key] = parse(key, value)
            except gr.Error:
                dropped += 1
    return good, dropped


def by_name(values: tuple) -> dict:
    """A handler's setting values (in SETTINGS order) by name."""
    if len(values) != len(NAMES):
        raise Refused(f"Training takes {len(NAMES)} settings ({', '.join(NAMES)}); got {len(values)}.")
    return dict(zip(NAMES, values, strict=True))


def takes_settings(fn: Callable, *before: str) -> Callable:
    """``fn(*before, *values)`` as Gradio and its API see it: one parameter per setting, named
    and ordered as in SETTINGS (Gradio names API arguments after the handler's parameters)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    fn.__signature__ = inspect.Signature([inspect.Parameter(n, kind) for n in (*before, *NAMES)])
    return fn
