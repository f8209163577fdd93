"""The launched app, shared by the app tests: one instance per test module, launched the way
app.py launches it (launch_kwargs), on a free port."""

from __future__ import annotations

import pytest

from .raw_http import launch


@pytest.fixture(scope="module")
def url():
    from vae_explorer import worker
    from vae_explorer.ui import build_app

    worker.warm_up()  # as app.py does after start-up, so that no test waits for the fork server
    demo = build_app()
    local_url = launch(demo)
    try:
        yield local_url
    finally:
        demo.close()
