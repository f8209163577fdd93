"""The launched app through a real gradio_client (one Client = one browser session)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    from vae_explorer.ui import build_app

    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=16)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True, ssr_mode=False)
    try:
        yield gradio_client.Client(url, verbose=False)
    finally:
        demo.close()


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_same_seed_same_grid_other_seed_other_grid(client):
    a = _image(client.predict(3, 1.0, api_name="/sample"))
    b = _image(client.predict(3, 1.0, api_name="/sample"))
    c = _image(client.predict(4, 1.0, api_name="/sample"))
    assert a.shape[:2] == (8 * 9 * 6 + 6, 8 * 9 * 6 + 6)  # 8×8 grid of 8×8 digits, 1-px gaps, 6× enlarged
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "seed, temperature, message",
    [(-1, 1.0, "Seed must be a whole number"), (2**40, 1.0, "Seed must be a whole number"),
     (0, 1e308, "greater than maximum"), (0, -5.0, "less than minimum")],
)
def test_bad_numbers_get_a_clear_error(client, seed, temperature, message):
    with pytest.raises(Exception, match=message):
        client.predict(seed, temperature, api_name="/sample")
    # The session still works afterwards.
    assert _image(client.predict(0, 1.0, api_name="/sample")).ndim == 2
