"""Lecture mode: larger type and images for a projector, advanced controls hidden, and short
explanations of the maths beside the views. A toggle, or ?lecture=1 in the address."""

from __future__ import annotations

import gradio as gr

CSS = """
body.vx-lecture .gradio-container { zoom: 1.3; }
body.vx-lecture .vx-advanced { display: none !important; }
body:not(.vx-lecture) .vx-lecture-only { display: none !important; }
.vx-lecture-only { background: #eef2ff; border-radius: 8px; padding: 4px 12px; }
"""

# Runs in the browser: the checkbox's value switches the page's class.
TOGGLE_JS = "(on) => { document.body.classList.toggle('vx-lecture', !!on); return on; }"
FROM_URL_JS = "() => new URLSearchParams(window.location.search).get('lecture') === '1'"

ELBO = r"""
**The objective.** For each image, the VAE minimises the negative ELBO, in nats:
$$-\mathrm{ELBO}(x) = \underbrace{\mathbb{E}_{q(z|x)}[-\log p(x|z)]}_{\text{reconstruction (left plot)}}
+ \beta\,\underbrace{\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0, I))}_{\text{KL (right plot)}}$$
with $\mathrm{KL}_d = \tfrac12(\mu_d^2 + \sigma_d^2 - 1 - \log\sigma_d^2)$ per dimension (the bars).
The KL is the price of information in z: when it is 0, z tells the decoder nothing.
"""

REPARAMETERIZATION = r"""
**The reparameterization.** The encoder gives a distribution, $q(z|x) = \mathcal N(\mu, \sigma^2)$,
not a point. Training samples $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$:
the randomness sits in ε, so gradients flow to μ and σ. Each dot on the map is a μ; the KL term
pulls them all towards the prior $\mathcal N(0, I)$, so that the whole map is covered and any
place decodes to something plausible.
"""

GENERATION = r"""
**Generation.** Draw $z \sim \mathcal N(0, T^2 I)$ and decode it. This works only where the codes
of real images cover the prior; a temperature $T < 1$ stays nearer the middle, where they are
dense.
"""


def explanation(text: str) -> gr.Markdown:
    """A block of maths shown only in lecture mode."""
    return gr.Markdown(
        text,
        elem_classes=["vx-lecture-only"],
        latex_delimiters=[
            {"left": "$$", "right": "$$", "display": True},
            {"left": "$", "right": "$", "display": False},
        ],
    )


def toggle(demo: gr.Blocks) -> gr.Checkbox:
    """The lecture-mode checkbox, wired to the page class and to ?lecture=1."""
    box = gr.Checkbox(
        False,
        label="Lecture mode",
        elem_id="lecture-toggle",
        container=False,
        info="large type for a projector, maths beside each view",
    )
    box.change(None, [box], [box], js=TOGGLE_JS, api_visibility="private")
    demo.load(None, None, [box], js=FROM_URL_JS, api_visibility="private")
    return box
