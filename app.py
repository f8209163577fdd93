"""VAE Explorer: `python app.py` serves the app on http://127.0.0.1:7860 (and runs as a
Hugging Face Space unchanged)."""

import os

# Gradio's queue rebuilds a pandas summary of up to its last 10,000 events after every event
# (2 ms of CPU per event at 100 events, 8 ms at 10,000, mostly holding the GIL); nothing here
# reads it. Recompute it rarely, so that it does not slow every click after an hour of lecture.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "10000")

import threading

from vae_explorer import worker
from vae_explorer.device import configure_threads
from vae_explorer.ui import build_app, launch_kwargs

configure_threads()
demo = build_app()
demo.queue(default_concurrency_limit=1, max_size=64)
if worker.enabled():
    # The trainings' fork server imports PyTorch once, in the background, after the page is up.
    warm = threading.Timer(3.0, worker.warm_up)
    warm.daemon = True
    warm.start()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
