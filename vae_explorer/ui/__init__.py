"""The Gradio app. Only this package imports gradio; handlers convert inputs, make one call
into the core, and convert the result back.

For now it is a small preview built on the core: prior samples from a shipped checkpoint.
The Train, Latent space, Interpolate and Generate tabs replace it (see the issues).
"""

from __future__ import annotations

import math
import os
import threading

import gradio as gr
import numpy as np

from ..checkpoint import Checkpoint, load_checkpoint, shipped_checkpoints
from ..generate import sample_prior, to_grid

DEFAULT_CHECKPOINT = "digits-2d"
_lock = threading.Lock()
_loaded: dict[str, Checkpoint] = {}


def shipped(name: str = DEFAULT_CHECKPOINT) -> Checkpoint:
    """A shipped checkpoint, loaded once and shared read-only by every session."""
    with _lock:
        if name not in _loaded:
            paths = shipped_checkpoints()
            if name not in paths:
                raise gr.Error(f"The shipped checkpoint {name!r} is missing from checkpoints/.")
            _loaded[name] = load_checkpoint(paths[name])
        return _loaded[name]


def _as_int(value, name: str, lo: int, hi: int) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number.") from None
    if not math.isfinite(f) or not f.is_integer() or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a whole number from {lo} to {hi}.")
    return int(f)


def sample(seed, temperature) -> np.ndarray:
    """Decode 64 prior samples into one enlarged image grid."""
    seed = _as_int(seed, "Seed", 0, 2**31 - 1)
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise gr.Error("Temperature must be a number.") from None
    try:
        images = sample_prior(shipped().model, n=64, temperature=t, seed=seed)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    grid = to_grid(images, nrow=8)
    return np.kron(grid, np.ones((6, 6), dtype=np.uint8))  # crisp 6× enlargement of 8×8 digits


def build_app() -> gr.Blocks:
    with gr.Blocks(title="VAE Explorer", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# VAE Explorer\n"
            "Prior samples z ~ N(0, T²·I) decoded by the shipped 8×8-digits VAE with a 2-D latent. "
            "Same seed, same grid. (Training and the latent-space tabs come next.)"
        )
        with gr.Row():
            with gr.Column(scale=1):
                seed = gr.Number(value=0, precision=0, label="Seed", info="same seed, same samples")
                temperature = gr.Slider(0.0, 3.0, value=1.0, step=0.1, label="Temperature",
                                        info="scales the prior's standard deviation")
                button = gr.Button("Sample", variant="primary", elem_id="sample-button")
            grid = gr.Image(label="Samples", elem_id="sample-grid", format="png", interactive=False)
        button.click(sample, [seed, temperature], grid, api_name="sample", concurrency_limit=None)
        demo.load(sample, [seed, temperature], grid, api_visibility="private")
    return demo


def launch_kwargs() -> dict:
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "ssr_mode": False,
        "max_file_size": "5mb",
    }
