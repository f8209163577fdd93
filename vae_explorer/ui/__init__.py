"""The Gradio app. Only this package imports gradio; handlers convert inputs, make one call
into the core, and convert the result back. One module per tab; `common` holds what they share.
"""

from __future__ import annotations

import functools
import os

import gradio as gr

from .. import images
from ..build import build_model
from ..config import ARCHS, ModelConfig
from ..limits import Limits, UploadLimits
from . import (
    compare_tab,
    elbo_tab,
    generate_tab,
    interpolate_tab,
    lab_tab,
    latent_tab,
    lecture,
    share,
    train_tab,
)
from .common import LIMITS, check_numbers, new_state, workspace

CSS = """
.gradio-container img { image-rendering: pixelated; }  /* enlarged digits stay crisp, never blurred */
#train-status .vx-bar {
  height: 10px; background: #e2e8f0; border-radius: 5px; overflow: hidden; margin-bottom: 6px;
}
#train-status .vx-bar > div { height: 100%; background: #4f46e5; transition: width 0.3s; }
#train-status .vx-note { color: #64748b; font-size: 0.9em; }
#train-status .vx-note-long { color: #1e293b; font-size: 1em; }  /* what a step did: read it */
details.vx-why > summary { cursor: pointer; color: #4338ca; font-weight: 600; }
#train-status > div:not(.vx-bar) { display: inline; margin-right: 0.6em; }
/* Empty elements that only carry a page script (ghost.py, export.py): no box, no flex gap. */
#ghost-keeper, #svg-button-keeper { display: none !important; }
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title="VAE Explorer", delete_cache=(3600, 3600)) as demo:
        state = new_state()  # this browser session's Workspace, built on first use
        clicks = gr.State(None)  # the places last decoded on the map (common.Clicks), for Interpolate
        with gr.Row(elem_id="vx-header", equal_height=True):
            gr.Markdown("# VAE Explorer", elem_id="vx-title")
            gr.Markdown(
                "Train a variational autoencoder live and explore what it learned.",
                elem_classes=["vx-subtitle"],
            )
            lecture_box = lecture.toggle(demo)
        link_note = gr.Markdown(visible=False, elem_id="share-note")  # what a shared link set
        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train"):
                lecture.explanation(lecture.ELBO)
                train = train_tab.build(state, lecture_box)
            with gr.Tab("Latent space", id="latent") as latent:
                lecture.explanation(lecture.REPARAMETERIZATION)
                latent_tab.build(state, clicks, latent)
            with gr.Tab("Interpolate", id="interpolate") as interp:
                interpolate_tab.build(state, clicks, interp)
            with gr.Tab("Generate", id="generate") as gen:
                lecture.explanation(lecture.GENERATION)
                generate_tab.build(state, gen)
            with gr.Tab("Inside the ELBO", id="elbo") as elbo_view:
                elbo_tab.build(state, elbo_view)
            with gr.Tab("Failure lab", id="lab"):
                lab_tab.build(state)
            with gr.Tab("AE vs VAE", id="compare") as compare_view:
                compare_tab.build(compare_view)
        fn, inputs, outputs = train["on_open"]

        def on_page_load(ws, request: gr.Request):
            # The page load is where a session's workspace is usually born (common.workspace),
            # and where a shared link's query sets the controls (share.py): one request.
            return [*fn(workspace(ws)), *share.on_open_link(request)]

        link_outputs = [*train["controls"], tabs, link_note]
        demo.load(on_page_load, inputs, [*outputs, *link_outputs], api_visibility="private")
        check_numbers(demo)  # every Slider and Number: a clear message for any value sent
    return demo


@functools.lru_cache(maxsize=4)
def max_upload_bytes(limits: Limits = LIMITS, uploads: UploadLimits | None = None) -> int:
    """The upload cap: the largest checkpoint a user can build under ``limits`` (28×28 images,
    the widest hidden layer and latent, either architecture, with Adam's two moments beside the
    weights, plus 1 MB of metadata), so that a downloaded model always uploads again; or the
    largest image the encoder reads (images.MAX_BYTES), or the largest data set a user may
    upload (limits.UploadLimits), whichever is larger."""
    largest = 0
    for arch in ARCHS:
        cfg = ModelConfig(
            input_shape=(1, 28, 28),
            arch=arch,
            hidden_dim=limits.max_hidden,
            latent_dim=limits.max_latent,
            bottom_latent_dim=limits.max_latent,
            likelihood="gaussian",
            gaussian_variance="learned",
            conditional=True,
        )
        model = build_model(cfg)
        params = sum(p.numel() for p in model.parameters())
        buffers = sum(b.numel() for b in model.buffers())
        largest = max(largest, 4 * (3 * params + buffers))  # float32 weights + two moments
    uploads = uploads or UploadLimits.from_env()
    return max(images.MAX_BYTES, largest + 2**20, uploads.max_upload_bytes)


def launch_kwargs() -> dict:
    """Where and how the app listens: on this machine only (127.0.0.1) unless
    GRADIO_SERVER_NAME says otherwise (a Space sets 0.0.0.0), with uploads capped."""
    port = os.environ.get("GRADIO_SERVER_PORT", "7860")
    try:
        server_port = int(port)
    except ValueError:
        raise ValueError(f"GRADIO_SERVER_PORT must be a port number, got {port!r}.") from None
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        "server_port": server_port,
        "ssr_mode": False,
        # Gradio keeps each session's state until it has seen this many sessions (default
        # 10,000, ~0.5 MB each); a lecture hall is far fewer, so memory stays bounded.
        "state_session_capacity": int(os.environ.get("VAE_EXPLORER_SESSION_CAPACITY", "1000")),
        "max_file_size": max_upload_bytes(),
        "css": CSS + lecture.CSS,
    }
