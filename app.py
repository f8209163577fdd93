"""VAE Explorer: `python app.py` serves the app on http://127.0.0.1:7860 (and runs as a
Hugging Face Space unchanged)."""

from vae_explorer.model import configure_threads
from vae_explorer.ui import build_app, launch_kwargs

configure_threads()
demo = build_app()
demo.queue(default_concurrency_limit=1, max_size=64)

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
