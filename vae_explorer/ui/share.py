"""A link that carries the lecture: the data set, every Train setting, the open tab and lecture
mode in the address's query (``?dataset=digits&beta=4&tab=elbo&lecture=1``); opening such a
link sets every control. The query is untrusted input, checked like any other: a value out of
range or a key this app does not know gets a sentence in a note, and that control stays as it
was. ``hide=seed,lr`` hides the named controls, for a prepared exercise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

from ..settings import BY_NAME, NAMES
from .train_settings import parse

# The app's tabs: label → id (ui/__init__.py), in their order.
TABS = {
    "Train": "train",
    "Latent space": "latent",
    "Interpolate": "interpolate",
    "Generate": "generate",
    "Inside the ELBO": "elbo",
    "Failure lab": "lab",
    "AE vs VAE": "compare",
}
MAX_KEYS = 64  # more keys than the app has controls: not a link it made
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

# The selected top-level tab's label joins the inputs (the last one), for the handler.
TAB_JS = """(...args) => {
  const sel = document.querySelector('button[role="tab"][aria-selected="true"]');
  args[args.length - 1] = sel ? sel.innerText.trim() : '';
  return args;
}"""
# The query → the whole address, shown and (where the browser allows) copied to the clipboard.
COPY_JS = """(q) => {
  if (!q) return q;
  const url = window.location.origin + window.location.pathname + q;
  try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) {}
  return url;
}"""


@dataclass
class Shared:
    """What a link's query asks for, checked."""

    values: dict[str, Any] = field(default_factory=dict)  # setting name → its checked value
    tab: str | None = None  # the tab id to open
    hide: list[str] = field(default_factory=list)  # setting names whose controls are hidden
    problems: list[str] = field(default_factory=list)  # one sentence per key that was not taken


def link_query(values: Mapping[str, Any], tab_label: str, lecture: bool) -> str:
    """The query of a link to this setup: every setting that passes its checks, the tab, lecture."""
    pairs = []
    for name in NAMES:
        try:
            value = parse(name, values.get(name))
        except gr.Error:
            continue  # a control holding a value it would refuse: left out of the link
        pairs.append((name, ("1" if value else "0") if isinstance(value, bool) else str(value)))
    if tab_label in TABS and TABS[tab_label] != "train":
        pairs.append(("tab", TABS[tab_label]))
    if lecture:
        pairs.append(("lecture", "1"))
    return "?" + urlencode(pairs)


def _value(name: str, text: str) -> Any:
    """A query's text → what the setting's check takes (a switch from 1/0, true/false)."""
    if BY_NAME[name].kind == "bool":
        low = text.strip().lower()
        return True if low in TRUE else False if low in FALSE else text
    return text


def read_query(params: Mapping[str, str]) -> Shared:
    """A link's query (untrusted) → the settings, tab and hidden controls it asks for, checked."""
    out = Shared()
    keys = list(params.keys())
    if len(keys) > MAX_KEYS:
        out.problems.append(f"The link has {len(keys)} keys, more than this app reads; it was ignored.")
        return out
    for key in keys:
        text = str(params[key])
        if key in BY_NAME:
            try:
                out.values[key] = parse(key, _value(key, text))
            except gr.Error as err:
                out.problems.append(str(err.message if hasattr(err, "message") else err))
        elif key == "tab":
            if text in TABS.values():
                out.tab = text
            else:
                out.problems.append(f"The link's tab must be one of: {', '.join(TABS.values())}.")
        elif key == "hide":
            names = [n.strip() for n in text.split(",") if n.strip()]
            unknown = [n for n in names if n not in BY_NAME]
            out.hide = [n for n in names if n in BY_NAME]
            if unknown:
                out.problems.append(f"The link hides controls this app does not have: {', '.join(unknown)}.")
        elif key == "lecture":
            if text not in ("0", "1"):
                out.problems.append("The link's lecture must be 0 or 1.")
        else:
            out.problems.append(f"The link has a key this app does not know: {key[:40]!r}.")
    return out


def note(shared: Shared) -> str:
    """What opening the link did, in words (empty when the address had no query)."""
    parts = []
    if shared.values or shared.tab or shared.hide:
        parts.append(f"Opened a shared link: {len(shared.values)} settings set.")
    if shared.problems:
        parts.append(
            "Not taken from the link (those controls stay as they were): " + " ".join(shared.problems)
        )
    return " ".join(parts)


def on_open_link(request: gr.Request):
    """Page load: the link's settings into the controls, its tab opened, named controls hidden."""
    params = getattr(request, "query_params", None) or {}
    shared = read_query(params)
    controls = [
        gr.update(
            **({"value": shared.values[n]} if n in shared.values else {}),
            **({"visible": False} if n in shared.hide else {}),
        )
        if n in shared.values or n in shared.hide
        else gr.skip()
        for n in NAMES
    ]
    tabs = gr.Tabs(selected=shared.tab) if shared.tab else gr.skip()
    text = note(shared)
    return [*controls, tabs, gr.update(value=text, visible=bool(text))]


def on_copy(*values):
    """The setup as a link's query: every setting (in NAMES order), lecture mode, the tab's label."""
    *settings, lecture, tab_label = values
    return link_query(dict(zip(NAMES, settings, strict=True)), str(tab_label or ""), lecture is True)


def build_button(controls: list, lecture_box) -> None:
    """The "Copy link" button and the address it makes (inside the Train tab)."""
    copy = gr.Button("Copy link to this setup", size="sm", elem_id="copy-link")
    link = gr.Textbox(
        show_label=False, elem_id="share-link", interactive=False, placeholder="the address of this setup"
    )
    tab_in = gr.Textbox(visible=False)
    copy.click(
        on_copy, [*controls, lecture_box, tab_in], [link], js=TAB_JS, api_visibility="private", queue=False
    ).then(None, [link], [link], js=COPY_JS, api_visibility="private", queue=False)
