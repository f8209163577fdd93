"""The Latent space tab's posterior views in a real browser: the q(z|x) ellipses toggle, the
reparameterization step by step (Resample ε twice), and drawing an input on the sketchpad.
Each step saves a close-up of the map and the view beside it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_browser import _image_digest, _tab, _wait_new_image

pytestmark = pytest.mark.slow


@pytest.fixture
def close_up(tmp_path):
    """close_up(page, name): the map and the view beside it at full resolution; into docs/images/
    with VAE_EXPLORER_UPDATE_SCREENSHOTS=1 (the README's pictures), else a temporary folder."""
    from PIL import Image

    out = ROOT / "docs" / "images" if os.environ.get("VAE_EXPLORER_UPDATE_SCREENSHOTS") == "1" else tmp_path

    def _shoot(page, name: str) -> Path:
        top = page.locator("#latent-map").bounding_box()
        clip = {"x": 60, "y": max(0, top["y"] - 50), "width": 1280, "height": 960}
        im = Image.open(io.BytesIO(page.screenshot(clip=clip, full_page=True))).convert("RGB")
        path = out / f"{name}.png"
        im.save(path, optimize=True)  # not quantized: 256 colours garble the class colours
        return path

    return _shoot


def test_ellipses_reparameterization_and_a_drawing(page, close_up):
    _tab(page, "Latent space")
    page.locator("#latent-map canvas").wait_for()
    page.wait_for_timeout(1500)  # the map's points arrive
    page.locator("#ellipse-toggle input").click()
    page.wait_for_function("document.body.classList.contains('vx-ellipses')", timeout=10_000)
    close_up(page, "latent-posteriors")

    # The reparameterization: opening the view draws seed 0; each press takes the next seed.
    _tab(page, "z = μ + σ ⊙ ε")
    first = _wait_new_image(page, "#reparam-image", "", timeout=30)
    seed = page.locator("#reparam-seed input")
    page.click("#resample-button")
    second = _wait_new_image(page, "#reparam-image", first)
    page.click("#resample-button")
    third = _wait_new_image(page, "#reparam-image", second)
    assert third != first
    page.wait_for_function(
        "document.querySelector('#reparam-values')?.innerText.includes('ε (seed 2)')", timeout=20_000
    )
    assert seed.input_value() == "2"
    page.wait_for_timeout(600)  # z glides to its new place
    close_up(page, "reparameterize")
    # The same seed again gives the same draw.
    seed.fill("1")
    page.click("#reparam-button")
    assert _wait_new_image(page, "#reparam-image", third) == second

    # Draw a "7": it is encoded as it is drawn.
    _tab(page, "Draw an input")
    page.locator("#sketchpad button[aria-label='Brush']").click()
    box = page.locator("#sketchpad canvas").first.bounding_box()
    cx, cy, s = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"] * 0.35
    page.mouse.move(cx - s * 0.6, cy - s)
    page.mouse.down()
    for x, y in [(cx, cy - s), (cx + s * 0.6, cy - s), (cx + s * 0.2, cy), (cx - s * 0.1, cy + s)]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()
    page.wait_for_selector("#sketch-result img", timeout=30_000)  # encoded as it changes
    page.wait_for_function(
        "document.querySelector('#sketch-text')?.innerText.includes('μ = [')", timeout=20_000
    )
    assert _image_digest(page, "#sketch-result")
    assert page.locator(".toast-wrap").inner_text().strip() == ""  # no error was shown on the way
    close_up(page, "draw")
