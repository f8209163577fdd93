"""Lecture mode: larger type and images for a projector, advanced controls hidden, and short
explanations of the maths beside the views. A toggle, or ?lecture=1 in the address."""

from __future__ import annotations

import gradio as gr

CSS = """
body.vx-lecture .gradio-container { zoom: 1.25; }
body.vx-lecture .vx-advanced { display: none !important; }
body:not(.vx-lecture) .vx-lecture-only { display: none !important; }
.vx-lecture-only { background: #eef2ff; border-radius: 8px; padding: 0 12px; gap: 0 !important; }
.vx-lecture-only .vx-strip p { margin: 4px 0; }
.vx-lecture-only .label-wrap { padding: 2px 0 !important; font-size: 0.85em; }
.vx-lecture-only > .block { padding-top: 0 !important; padding-bottom: 0 !important; }
#vx-header { align-items: center; }
#vx-header h1 { margin: 0; }
#lecture-toggle { border: none !important; background: transparent !important; box-shadow: none !important; }
body.vx-lecture .vx-subtitle, body.vx-lecture #lecture-toggle .info-text { display: none; }
body.vx-lecture #vx-header h1 { font-size: 1.5rem; }
body.vx-lecture #vx-header .block { padding: 0 8px !important; }
body.vx-lecture .gradio-container { padding-top: 2px !important; }
body.vx-lecture .vx-map canvas { max-width: 330px !important; }
body.vx-lecture .vx-legend { font-size: 15px; }
body.vx-lecture #train-status { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
body.vx-lecture #train-status .vx-note-long { display: block; white-space: normal; }
"""

# Runs in the browser: the checkbox's value switches the page's class.
TOGGLE_JS = "(on) => { document.body.classList.toggle('vx-lecture', !!on); return on; }"
FROM_URL_JS = "() => new URLSearchParams(window.location.search).get('lecture') === '1'"


# Each text is (the one-line strip always shown in lecture mode, the rest behind "More").
ELBO = (
    r"""**The objective**, in nats per image: $-\mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[-\log p(x|z)]
+ \beta\,\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I))$:
the left plot + β × the right plot.""",
    r"""The KL splits over the latent dimensions,
$\mathrm{KL}_d = \tfrac12(\mu_d^2 + \sigma_d^2 - 1 - \log\sigma_d^2)$ (the bars). The KL is the
price of information in z: when it is 0, z tells the decoder nothing. With β = 1 the objective
is the true negative ELBO, an upper bound on $-\log p(x)$.""",
)

REPARAMETERIZATION = (
    r"""**The reparameterization.** The encoder gives $q(z|x) = \mathcal N(\mu, \sigma^2)$;
$z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$: the noise is an input,
so gradients reach μ and σ.""",
    r"""Each dot on the map is a μ; the KL term pulls them all towards the prior
$\mathcal N(0, I)$ (the dashed circles), so that the whole map is covered and any place decodes
to something plausible.""",
)

GENERATION = (
    r"""**Generation.** Draw $z \sim \mathcal N(0, T^2 I)$ and decode it: this works where the codes
of real images cover the prior.""",
    r"""A temperature $T < 1$ stays nearer the middle, where the codes are dense; $T > 1$
reaches the prior's edges, where few images were encoded.""",
)

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def explanation(text: tuple[str, str]) -> gr.Column:
    """The maths of a view, shown only in lecture mode: one compact strip, the rest under "More"
    (a projector at 1280×720 must still show the view itself without scrolling)."""
    strip, more = text
    with gr.Column(elem_classes=["vx-lecture-only"]) as col:
        gr.Markdown(strip, latex_delimiters=LATEX, elem_classes=["vx-strip"])
        with gr.Accordion("More", open=False):
            gr.Markdown(more, latex_delimiters=LATEX)
    return col


def toggle(demo: gr.Blocks) -> gr.Checkbox:
    """The lecture-mode checkbox, wired to the page class and to ?lecture=1."""
    box = gr.Checkbox(
        False,
        label="Lecture mode",
        elem_id="lecture-toggle",
        container=False,
        info="large type for a projector, maths beside each view",
        scale=0,
        min_width=220,
    )
    box.change(None, [box], [box], js=TOGGLE_JS, api_visibility="private")
    demo.load(None, None, [box], js=FROM_URL_JS, api_visibility="private")
    return box
