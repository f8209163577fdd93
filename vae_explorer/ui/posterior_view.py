"""q(z|x) on the latent map, and the reparameterization step by step.

The toggle under the map draws the 1σ ellipses of many inputs' posteriors (in the browser: the
map's JSON carries every point's ellipse). The "z = μ + σ ⊙ ε" view takes one input — a test
image by class and index, or the one nearest to the last click — and shows μ, σ, a seeded ε and
z = μ + σ ⊙ ε: on the map z moves inside the input's ellipse, beside it the decoded draw."""

from __future__ import annotations

import gradio as gr
import torch

from .common import (
    MAX_IN_CLASS,
    Refused,
    as_choice,
    as_int,
    display,
    guard,
    pick_test_image,
    recent,
    workspace,
)
from .latent_map import MAX_POINTS, SAMPLE_ELLIPSES, TOGGLE_JS, check_method, make_focus, map_value

SOURCES = ("test image", "nearest to the last click")
MAX_SEED = 999_999
TRAIL = 12  # earlier draws shown as small dots: together they fill the ellipse
SHOWN_DIMS = 8  # columns of the μ, σ, ε, z table
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

EXPLANATION = r"""
**Why the gradient can now flow.** Sampling $z \sim \mathcal N(\mu, \sigma^2)$ puts a random node
between the loss and the encoder's weights, and there is no derivative through "draw a sample".
Written as $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$, the
randomness is an **input**, not a node on that path: $\partial z/\partial\mu = 1$ and
$\partial z/\partial\sigma = \varepsilon$, so back-propagation reaches μ and σ (and through them
the encoder) like any other layer.
Same seed, same ε; each press of *Resample ε* takes the next seed.
"""
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def build_toggle() -> gr.Checkbox:
    """The checkbox under the map that draws a sample of posteriors (a browser-only switch)."""
    box = gr.Checkbox(
        False,
        label=f"Show q(z|x) for {SAMPLE_ELLIPSES} inputs",
        elem_id="ellipse-toggle",
        info="each input's posterior as its 1σ ellipse: together they cover the prior's circles "
        "(the KL term's job). Hover a point for its own 1σ and 2σ ellipses.",
    )
    box.change(None, [box], [box], js=TOGGLE_JS, api_visibility="private")
    return box


def _index(ws, clicks, source, cls, index) -> tuple[int, str]:
    """The chosen test image's index in the test set, and a title for the map."""
    source = as_choice(source, "Input", SOURCES)
    if source == SOURCES[1]:
        places = recent(clicks, ws)
        if not places:
            raise Refused("Click a place on the map (or encode an image) first.")
        i = guard(lambda: ws.nearest_test_image(places[-1][0], MAX_POINTS))
        return i, f"test image {i}, nearest to the click"
    i, k = pick_test_image(ws, cls, index)
    return i, f"class {cls}, #{k}"


def _row(name: str, values: torch.Tensor) -> str:
    cells = [f"{v:+.3f}" for v in values[:SHOWN_DIMS].tolist()]
    return f"| {name} | " + " | ".join(cells) + (" | …" if len(values) > SHOWN_DIMS else "") + " |"


def _table(d, autoencoder: bool) -> str:
    dims = min(len(d.mu), SHOWN_DIMS)
    more = len(d.mu) > SHOWN_DIMS
    names = [f"z{i + 1}".translate(SUBSCRIPTS) for i in range(dims)]
    head = "| | " + " | ".join(names) + (" | …" if more else "") + " |"
    rule = "|---|" + "---|" * (dims + more)
    rows = [
        _row("μ", d.mu),
        _row("σ = exp(½ log σ²)", d.sigma),
        _row(f"ε (seed {d.seed})", d.eps),
        _row("**z = μ + σ ⊙ ε**", d.z),
    ]
    note = "Left to right: the input, the decode of μ, the decode of this z."
    if autoencoder:
        note += " This model is a plain autoencoder: its code is a point (σ = 0), so z = μ for every ε."
    return "\n".join([head, rule, *rows, "", note])


def _reparam(ws, clicks, focus, method, n, source, cls, index, seed):
    ws = workspace(ws)
    method, n = check_method(ws, method), as_int(n, "Points", 10, MAX_POINTS)
    seed = as_int(seed, "Seed", 0, MAX_SEED)
    i, title = _index(ws, clicks, source, cls, index)
    d = guard(lambda: ws.reparameterize(i, seed, TRAIL))
    x, label = ws.data.x_test[i], (int(ws.data.y_test[i]) if ws.model.config.conditional else None)
    focus = make_focus(ws, title, d.mu.numpy(), d.logvar.numpy(), d.z.numpy(), d.trail.numpy(), x, label)
    images = torch.stack([ws.data.x_test[i], d.mean_image, d.image])  # (3, C, H, W)
    text = _table(d, ws.model.config.autoencoder)
    return ws, focus, map_value(ws, method, n, focus=focus), display(images, nrow=3), text, seed


def on_reparameterize(ws, clicks, focus, method, n, source, cls, index, seed):
    """Encode the chosen input and draw z = μ + σ ⊙ ε with ε from ``seed`` (same seed, same ε)."""
    return _reparam(ws, clicks, focus, method, n, source, cls, index, seed)


def on_resample(ws, clicks, focus, method, n, source, cls, index, seed):
    """The next seed's ε (the button "Resample ε")."""
    nxt = as_int(seed, "Seed", 0, MAX_SEED) + 1
    return _reparam(ws, clicks, focus, method, n, source, cls, index, 0 if nxt > MAX_SEED else nxt)


def on_classes(ws, cls):
    """The data set's class names for the class menu (the model may have changed)."""
    ws = workspace(ws)
    names = ws.data.class_names
    return ws, gr.update(choices=names, value=cls if cls in names else names[0])


def build(state: gr.State, clicks: gr.State, focus: gr.State, latent_map: gr.HTML, method, n, tab) -> None:
    """The "z = μ + σ ⊙ ε" view's controls and outputs (inside a sub-tab beside the map)."""
    source = gr.Radio(list(SOURCES), value=SOURCES[0], label="Input", elem_id="reparam-source")
    with gr.Row():
        cls = gr.Dropdown(["0"], value="0", label="Class", allow_custom_value=True, elem_id="reparam-class")
        index = gr.Slider(0, MAX_IN_CLASS - 1, value=0, step=1, label="Index", info="within the class")
    with gr.Row():
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", elem_id="reparam-seed")
        go = gr.Button("Encode", elem_id="reparam-button")
        again = gr.Button("Resample ε", variant="primary", elem_id="resample-button")
    image = gr.Image(
        label="x, decode(μ), decode(z)", elem_id="reparam-image", interactive=False, format="png"
    )
    values = gr.Markdown(elem_id="reparam-values")
    gr.Markdown(EXPLANATION, latex_delimiters=LATEX)
    inputs = [state, clicks, focus, method, n, source, cls, index, seed]
    io = (inputs, [state, focus, latent_map, image, values, seed])
    fast = {"concurrency_limit": None, "show_progress": "minimal"}
    go.click(on_reparameterize, *io, api_name="reparameterize", **fast)
    again.click(on_resample, *io, api_visibility="private", **fast)
    tab.select(on_classes, [state, cls], [state, cls], api_visibility="private", **fast).then(
        on_reparameterize, *io, api_visibility="private", **fast
    )
