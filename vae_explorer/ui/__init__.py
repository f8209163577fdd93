"""The Gradio app. Only this package imports gradio; handlers convert inputs, make one call
into the core, and convert the result back. One module per tab; `common` holds what they share.
"""

from __future__ import annotations

import os

import gradio as gr

from . import generate_tab, interpolate_tab, lab_tab, latent_tab, lecture, train_tab
from .common import new_state

CSS = """
#train-status .vx-bar {
  height: 10px; background: #e2e8f0; border-radius: 5px; overflow: hidden; margin-bottom: 6px;
}
#train-status .vx-bar > div { height: 100%; background: #4f46e5; transition: width 0.3s; }
#train-status .vx-note { color: #64748b; font-size: 0.9em; }
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title="VAE Explorer", delete_cache=(3600, 3600)) as demo:
        state = new_state()  # this browser session's Workspace, built on first use
        with gr.Row():
            gr.Markdown("# VAE Explorer\nTrain a variational autoencoder live and explore what it learned.")
            lecture.toggle(demo)
        with gr.Tabs():
            with gr.Tab("Train", id="train"):
                lecture.explanation(lecture.ELBO)
                train = train_tab.build(state)
            with gr.Tab("Latent space", id="latent") as latent:
                lecture.explanation(lecture.REPARAMETERIZATION)
                latent_tab.build(state, latent)
            with gr.Tab("Interpolate", id="interpolate") as interp:
                interpolate_tab.build(state, interp)
            with gr.Tab("Generate", id="generate") as gen:
                lecture.explanation(lecture.GENERATION)
                generate_tab.build(state, gen)
            with gr.Tab("Failure lab", id="lab"):
                lab_tab.build(state)
        fn, inputs, outputs = train["on_open"]
        demo.load(fn, inputs, outputs, api_visibility="private")
    return demo


def launch_kwargs() -> dict:
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "ssr_mode": False,
        "max_file_size": "5mb",
        "css": CSS + lecture.CSS,
    }
