"""What every tab shares: the per-session Workspace, input checks that end in gr.Error, and
image conversion. Handlers convert inputs, make one call into the core, convert back."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
import numpy as np
import torch

from ..generate import to_grid
from ..limits import Limits
from ..session import DEFAULT_CHECKPOINT, Workspace

T = TypeVar("T")
SESSION_TTL = float(os.environ.get("VAE_EXPLORER_SESSION_TTL", 2 * 3600))  # seconds
TRAIN_CONCURRENCY = int(os.environ.get("VAE_EXPLORER_TRAIN_CONCURRENCY", "1"))
DISPLAY_PX = 320  # images are enlarged with crisp pixels to about this size


def close_workspace(ws: Workspace | None) -> None:
    """delete_callback of the session State: stop any training so its thread ends."""
    if ws is not None:
        ws.request_stop()


def new_state() -> gr.State:
    # Starts as None and is built lazily: Gradio deep-copies a State's initial value per session,
    # and a model or a lock must never be shared through it.
    return gr.State(None, time_to_live=SESSION_TTL, delete_callback=close_workspace)


def workspace(ws: Workspace | None) -> Workspace:
    """The session's workspace, created from the default shipped checkpoint on first use."""
    if ws is None:
        ws = guard(lambda: Workspace.from_shipped(DEFAULT_CHECKPOINT, limits=LIMITS))
    return ws


def guard(fn: Callable[[], T]) -> T:
    """Run a core call; its ValueError becomes a gr.Error the user reads."""
    try:
        return fn()
    except ValueError as err:
        raise gr.Error(_sentence(str(err))) from None


def _sentence(msg: str) -> str:
    return msg[:1].upper() + msg[1:] if msg else "Something went wrong."


def _number(value: Any) -> float | None:
    """float(value) for a real, finite number from an untrusted input; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer from an untrusted input (the API may send anything)."""
    f = _number(value)
    if f is None or not f.is_integer() or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a whole number from {lo} to {hi}.")
    return int(f)


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    f = _number(value)
    if f is None or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a number from {lo:g} to {hi:g}.")
    return f


def as_bool(value: Any, name: str) -> bool:
    """A checkbox value; the API may send anything, and "no" must not mean True."""
    if not isinstance(value, bool):
        raise gr.Error(f"{name} must be true or false.")
    return value


def as_choice(value: Any, name: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise gr.Error(f"{name} must be one of: {', '.join(choices)}.")
    return value


def display(images: torch.Tensor, nrow: int = 8, px: int = DISPLAY_PX) -> np.ndarray:
    """(N, C, H, W) in [0, 1] → a uint8 grid enlarged by a whole factor to about ``px`` wide."""
    grid = to_grid(images, nrow=nrow)
    scale = max(1, px // grid.shape[1])
    if scale > 1:
        block = np.ones((scale, scale) + (1,) * (grid.ndim - 2), dtype=np.uint8)
        grid = np.kron(grid, block)
    return grid


LIMITS = Limits.from_env()
