"""The "Inside the ELBO" tab in a real browser: a β sweep moves its models onto the
rate–distortion plane, and a click on a point makes that model the session's."""

from __future__ import annotations

import json

import pytest

from .test_browser import _tab

pytestmark = pytest.mark.slow


def test_a_sweep_and_a_click_on_its_point(page, shoot):
    _tab(page, "Inside the ELBO")
    page.locator("#rd-plane canvas").wait_for()
    page.fill("#sweep-betas textarea", "0.5, 4")
    page.locator("#rd-plane canvas").scroll_into_view_if_needed()
    epochs = page.locator("#sweep-epochs input[type=number]")
    epochs.fill("1")
    epochs.press("Enter")
    page.click("#sweep-run")
    page.wait_for_function(
        "document.querySelector('#sweep-status')?.innerText.includes('2 models trained')", timeout=120_000
    )
    canvas = page.locator("#rd-plane canvas")
    places = json.loads(canvas.get_attribute("data-points"))
    assert len(places) == 2
    box = canvas.bounding_box()
    width = float(canvas.evaluate("c => c.width"))
    x, y = places[1]  # β = 4
    page.mouse.click(box["x"] + x * box["width"] / width, box["y"] + y * box["width"] / width)
    page.wait_for_function(
        "document.querySelector('#sweep-status')?.innerText.includes('β = 4.0 is now')", timeout=30_000
    )
    shoot(page, "rd-plane")
