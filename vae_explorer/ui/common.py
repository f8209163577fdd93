"""What every tab shares: the per-session Workspace, input checks that end in gr.Error, and
image conversion. Handlers convert inputs, make one call into the core, convert back."""

from __future__ import annotations

import logging
import math
import os
import time
from abc import ABCMeta
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr
import numpy as np
import torch

from .. import worker
from ..generate import to_grid
from ..limits import Limits
from ..session import DEFAULT_CHECKPOINT, Workspace
from ..settings import finite_number
from . import gradio_fixes

T = TypeVar("T")


def _env_number(name: str, default: float, lo: float, kind: type = float):
    """A positive number from an environment variable, or a ValueError saying which one is wrong."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be a number, got {raw[:40]!r}.") from None
    if not (math.isfinite(value) and value >= lo):
        raise ValueError(f"the environment variable {name} must be at least {lo:g}, got {raw[:40]!r}.")
    return value


SESSION_TTL = _env_number("VAE_EXPLORER_SESSION_TTL", 2 * 3600, 1.0)  # seconds
TRAIN_CONCURRENCY = _env_number("VAE_EXPLORER_TRAIN_CONCURRENCY", 1, 1, int)
# Each image of a grid is enlarged (nearest neighbour: crisp pixels) to at least this many
# pixels a side: a 28×28 digit becomes 84 px, readable from the back of a lecture hall.
TILE_PX = 84
BIG_PX = 224  # a single decoded image, the view's main picture


LOG = logging.getLogger("vae_explorer")


class Refused(gr.Error):
    """A user's bad input, said to them in a sentence: logged as that one line, never as a
    traceback (a fuzz of 880 bad calls once wrote 1.1 MB of log, 545 tracebacks)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_exception=False)
        LOG.warning("refused input: %s", message[:MAX_MESSAGE])


def close_workspace(ws: Workspace | None) -> None:
    """delete_callback of the session State: stop any training so its thread ends."""
    if ws is not None:
        ws.request_stop()


def new_state() -> gr.State:
    # Starts as None and is built lazily: Gradio deep-copies a State's initial value per session,
    # and a model or a lock must never be shared through it.
    global _SHORTEST_TTL
    _SHORTEST_TTL = min(_SHORTEST_TTL, SESSION_TTL)
    return gr.State(None, time_to_live=SESSION_TTL, delete_callback=close_workspace)


def new_workspace() -> Workspace:
    """A fresh workspace holding the default shipped model."""
    return guard(lambda: Workspace.from_shipped(DEFAULT_CHECKPOINT, limits=LIMITS, train_worker=TRAIN_WORKER))


# When each session (Gradio's session hash) last got a fresh workspace, oldest first, bounded. A
# workspace can only have expired once SESSION_TTL has passed since it was made: an event that
# finds none sooner is a race at the page's start (the load, a tab's first load and the address's
# ?lecture=1 run at once, each before the others' State is stored), and says nothing.
_STARTED: OrderedDict[str, float] = OrderedDict()
_STARTED_MAX = 10_000
_SHORTEST_TTL = math.inf  # the shortest time to live a session State was built with (new_state)


def _session_hash() -> str | None:
    from gradio.context import LocalContext  # set by Gradio around every event handler

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None)


def expired_before(session: str | None, now: float | None = None) -> bool:
    """Record that ``session`` gets a fresh workspace now; True when it had one made at least
    SESSION_TTL ago (so that one expired), False for a new session or a start-up race."""
    if session is None:
        return False
    now = time.monotonic() if now is None else now
    started = _STARTED.get(session)
    if started is not None and now - started < min(SESSION_TTL, _SHORTEST_TTL):
        return False  # a race: keep the first start's time
    _STARTED[session] = now
    _STARTED.move_to_end(session)
    while len(_STARTED) > _STARTED_MAX:
        _STARTED.popitem(last=False)
    return started is not None


def workspace(ws: Workspace | None) -> Workspace:
    """The session's workspace. The page load usually creates it (see build_app); an event that
    finds none either comes first in a new session (a click before the page load finished, a
    script's first call: nothing to say) or from a session whose workspace expired (SESSION_TTL
    without use): then a fresh one is started and the user is told why their model changed."""
    if ws is None:
        ws = new_workspace()
        if expired_before(_session_hash()):
            gr.Info(
                f"A fresh workspace with the shipped {DEFAULT_CHECKPOINT} model was started: this "
                f"session's was unused for {SESSION_TTL / 3600:g} h and was discarded."
            )
    return ws


@dataclass(frozen=True)
class Clicks:
    """The last places decoded on the latent map (or inputs encoded), newest last: the Interpolate
    tab runs between the last two, the ε view starts from the test image nearest the last. UI
    state (a gr.State per session), valid for the model version they were made with."""

    version: int  # the workspace's model version when they were made
    points: tuple[tuple[np.ndarray, int | None], ...]  # (z (D,), the class it was decoded with)


def remember(clicks: Clicks | None, ws: Workspace, z: np.ndarray, label: int | None) -> Clicks:
    """``clicks`` with one more place; two are kept."""
    kept = recent(clicks, ws)[-1:]
    return Clicks(ws.version, (*kept, (np.asarray(z, dtype=np.float32).reshape(-1), label)))


def recent(clicks: Clicks | None, ws: Workspace) -> tuple:
    """The remembered places that belong to the workspace's current model, oldest first."""
    return clicks.points if isinstance(clicks, Clicks) and clicks.version == ws.version else ()


MAX_IN_CLASS = 100  # test images offered per class where one is picked by class and index


def pick_test_image(ws: Workspace, cls: Any, index: Any) -> tuple[int, int]:
    """(its test-set index, the checked index within its class) of the image picked by class
    name and index within the class (both untrusted inputs)."""
    names = ws.data.class_names
    cls = as_choice(cls, "Class", names)
    k = as_int(index, "Index", 0, MAX_IN_CLASS - 1)
    return guard(lambda: ws.test_index(names.index(cls), k, MAX_IN_CLASS)), k


def guard(fn: Callable[[], T]) -> T:
    """Run a core call; its ValueError becomes a gr.Error the user reads."""
    try:
        return fn()
    except ValueError as err:
        raise Refused(sentence(str(err))) from None


MAX_MESSAGE = 300  # characters: a message quoting a hostile value (a 1 MB "latent size") is cut


def sentence(msg: str) -> str:
    """A core error message as the user reads it: capitalised, and cut if it quotes too much. A
    message that begins with a name (a file, ``notes.txt``; a path, ``mine/a.png``) keeps it as it
    is spelt: names are case-sensitive."""
    if not msg:
        return "Something went wrong."
    first = msg.split(" ", 1)[0]
    if not any(ch in first for ch in "./\\_:"):
        msg = msg[:1].upper() + msg[1:]
    return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - 1] + "…"


_number = finite_number  # float(value) for a real, finite number from an untrusted input; None otherwise


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer from an untrusted input (the API may send anything)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if lo <= value <= hi:
            return int(value)  # exact: through a float, 2**53 + 1 would come back as 2**53
        raise Refused(f"{name} must be a whole number from {lo} to {hi}.")
    f = _number(value)
    if f is None or not f.is_integer() or not lo <= f <= hi:
        raise Refused(f"{name} must be a whole number from {lo} to {hi}.")
    return int(f)


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    f = _number(value)
    if f is None or not lo <= f <= hi:
        raise Refused(f"{name} must be a number from {lo:g} to {hi:g}.")
    return f


def _number_preprocess(self, payload: Any) -> float | int | None:
    """gr.Number.preprocess, checked: an empty field stays None (the handler decides, e.g. "no
    class label"); anything else must be a finite number in range."""
    if payload is None:
        return None
    return _checked_number(self, payload)


def _slider_preprocess(self, payload: Any) -> float | int:
    """gr.Slider.preprocess, checked: a slider has no empty value, so None is refused too."""
    return _checked_number(self, payload)


def _checked_class(base: type, name: str, preprocess: Callable) -> type:
    """``base`` with ``preprocess`` replaced: Gradio's own fails on "abc", a list, NaN or ±Inf
    with a TypeError or ValueError, which the user sees as a bare "Error" before any handler runs.
    The class is made with ABCMeta.__new__ rather than a class statement, because Gradio's
    component metaclass would write a .pyi stub next to this file; the metaclass adds nothing a
    subclass without new events or __init__ needs."""
    attrs = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": preprocess.__doc__,
        "is_template": True,  # the browser keeps using the base component (gr.Number, gr.Slider)
        "preprocess": preprocess,
    }
    return ABCMeta.__new__(type(base), name, (base,), attrs)


def _choice_preprocess(self, payload: Any) -> Any:
    """gr.Radio/gr.Dropdown.preprocess, whose refusal of a value not among the choices is a
    Refused (one log line) instead of an error Gradio logs with its traceback."""
    try:
        return type(self).__mro__[1].preprocess(self, payload)
    except gr.Error as err:
        raise Refused(err.message) from None


CheckedNumber = _checked_class(gr.Number, "CheckedNumber", _number_preprocess)
CheckedSlider = _checked_class(gr.Slider, "CheckedSlider", _slider_preprocess)
CheckedRadio = _checked_class(gr.Radio, "CheckedRadio", _choice_preprocess)
CheckedDropdown = _checked_class(gr.Dropdown, "CheckedDropdown", _choice_preprocess)


def _checked_number(comp: gr.Number | gr.Slider, payload: Any) -> float | int:
    name = comp.label or "This value"
    lo, hi = comp.minimum, comp.maximum
    whole = comp.precision == 0
    f = _number(payload)
    if f is None or (whole and not f.is_integer()):
        span = f" from {lo:g} to {hi:g}" if lo is not None and hi is not None else ""
        raise Refused(f"{name} must be {'a whole number' if whole else 'a number'}{span}.")
    # Gradio's own wording for the range, with the input's name in front.
    if lo is not None and f < lo:
        raise Refused(f"{name}: {f:g} is less than minimum value {lo:g}.")
    if hi is not None and f > hi:
        raise Refused(f"{name}: {f:g} is greater than maximum value {hi:g}.")
    value = payload if isinstance(payload, int) else f  # a huge int stays exact
    return gr.Number.round_to_precision(value, comp.precision)


def check_numbers(demo: gr.Blocks) -> None:
    """Give every gr.Number and gr.Slider of ``demo`` the checks above, and every gr.Radio and
    gr.Dropdown a one-line refusal. Done once over the whole
    app, so that no numeric input of any tab (or any added later) is left with Gradio's bare
    preprocess; the class is swapped in place, and Gradio copies the class when an event
    updates a component, so the checks survive updates."""
    for block in demo.blocks.values():
        if type(block) is gr.Number:
            block.__class__ = CheckedNumber
        elif type(block) is gr.Slider:
            block.__class__ = CheckedSlider
        elif type(block) is gr.Radio:
            block.__class__ = CheckedRadio
        elif type(block) is gr.Dropdown:
            block.__class__ = CheckedDropdown


def as_bool(value: Any, name: str) -> bool:
    """A checkbox value; the API may send anything, and "no" must not mean True."""
    if not isinstance(value, bool):
        raise Refused(f"{name} must be true or false.")
    return value


def as_choice(value: Any, name: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise Refused(f"{name} must be one of: {', '.join(choices)}.")
    return value


def why(text: str, what: str = "") -> str:
    """Markdown for a longer explanation folded under "Why?" (a tab opens with two sentences at
    most; the rest is one click away). HTML details, so it can sit inside any Markdown value."""
    summary = f"Why? {what[:1].upper()}{what[1:]}" if what else "Why?"
    return f'<details class="vx-why"><summary>{summary}</summary>\n\n{text}\n\n</details>'


def display(images: torch.Tensor, nrow: int = 8, tile: int = TILE_PX) -> np.ndarray:
    """(N, C, H, W) in [0, 1] → a uint8 grid of ``nrow`` images a row, enlarged by a whole factor
    so that each image is at least ``tile`` pixels a side, with a thin white gap between them.
    The page shows it with ``image-rendering: pixelated``, so the browser adds no blur either."""
    grid = to_grid(images, nrow=nrow)
    scale = max(1, math.ceil(tile / max(images.shape[-2:])))
    if scale > 1:
        block = np.ones((scale, scale) + (1,) * (grid.ndim - 2), dtype=np.uint8)
        grid = np.kron(grid, block)
    return grid


LIMITS = Limits.from_env()
TRAIN_WORKER = worker.enabled()  # each training in a process of its own (VAE_EXPLORER_TRAIN_WORKER)
gradio_fixes.install()  # an image shown to two sessions at once is never served half-written
