"""Act as a person would, in a real browser: train, click the map, drag the slider, sample,
upload a model and a bad file. Each test saves a screenshot of its tab."""

from __future__ import annotations

import hashlib
import math
import pickle
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _image_digest(page, selector: str) -> str:
    """A hash of the image a component shows (its bytes, not its URL)."""
    src = page.locator(f"{selector} img").first.get_attribute("src")
    assert src, f"{selector} shows no image"
    with urllib.request.urlopen(src, timeout=10) as r:
        return hashlib.sha256(r.read()).hexdigest()


def _wait_new_image(page, selector: str, old: str, timeout: float = 20.0) -> str:
    deadline = timeout * 1000
    step = 200
    waited = 0
    while waited < deadline:
        try:
            now = _image_digest(page, selector)
        except (AssertionError, OSError):
            now = old
        if now != old:
            return now
        page.wait_for_timeout(step)
        waited += step
    raise AssertionError(f"{selector} did not change within {timeout} s")


def _trace_lengths(page, selector: str) -> dict[str, int]:
    return page.evaluate(
        """(sel) => {
            const plot = document.querySelector(sel + ' .js-plotly-plot');
            const out = {};
            if (plot && plot.data) for (const t of plot.data) out[t.name] = (t.y || []).length;
            return out;
        }""",
        selector,
    )


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_train_tab_streams_both_plots_and_stops(page, shoot):
    before = _trace_lengths(page, "#recon-plot")
    assert "per step" not in before  # the shipped model: per-epoch test values only
    epochs = page.locator("#train-epochs input[type=number]")
    epochs.fill("2")
    epochs.press("Enter")
    page.click("#train-start")
    page.wait_for_function(
        "document.querySelector('#train-status')?.innerText.includes('Finished')", timeout=120_000
    )
    recon, kl = _trace_lengths(page, "#recon-plot"), _trace_lengths(page, "#kl-plot")
    steps = 2 * math.ceil(8000 / 128)  # 2 epochs of mnist-10k's 8,000 images at the default batch
    assert recon.get("per step", 0) == steps and kl.get("per step", 0) == steps
    assert recon.get("test (per epoch)") == 2 and kl.get("test (per epoch)") == 2
    shoot(page, "train")
    epochs.fill("150")
    epochs.press("Enter")
    page.click("#train-start")
    page.wait_for_function(
        "document.querySelector('#train-status')?.innerText.includes('Training')", timeout=60_000
    )
    page.click("#train-stop")
    page.wait_for_function(
        "document.querySelector('#train-status')?.innerText.includes('Stopped')", timeout=60_000
    )


def test_latent_map_clicks_decode_anywhere(page, shoot):
    _tab(page, "Latent space")
    canvas = page.locator("#latent-map canvas")
    canvas.wait_for()
    page.wait_for_timeout(1500)  # the map's points arrive
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"])
    first = _wait_new_image(page, "#decoded-image", "")
    page.mouse.click(box["x"] + 0.08 * box["width"], box["y"] + 0.08 * box["height"])  # empty corner
    second = _wait_new_image(page, "#decoded-image", first)
    assert "z = [" in page.locator("#decoded-z").inner_text()
    page.get_by_test_id("pca-radio-label").click()
    page.wait_for_timeout(1500)
    page.mouse.click(box["x"] + 0.7 * box["width"], box["y"] + 0.3 * box["height"])
    _wait_new_image(page, "#decoded-image", second)
    page.click("#manifold-button")
    page.wait_for_selector("#manifold-grid img", timeout=30_000)
    shoot(page, "latent")


def test_interpolate_slider_moves_the_frame(page, shoot):
    _tab(page, "Interpolate")
    page.wait_for_selector("#interp-strip img", timeout=30_000)
    page.wait_for_selector("#interp-frame img", timeout=30_000)
    before = _image_digest(page, "#interp-frame")
    page.locator("#interp-slider input[type=range]").fill("0.95")
    _wait_new_image(page, "#interp-frame", before)
    shoot(page, "interpolate")


def test_generate_same_seed_same_grid(page, shoot):
    _tab(page, "Generate")
    page.click("#sample-button")
    first = _wait_new_image(page, "#sample-grid", "")
    seed = page.locator("#sample-seed input")
    seed.fill("5")
    page.click("#sample-button")
    other = _wait_new_image(page, "#sample-grid", first)
    seed.fill("0")
    page.click("#sample-button")
    assert _wait_new_image(page, "#sample-grid", other) == first
    page.click("#traverse-button")
    page.wait_for_selector("#traverse-grid img", timeout=30_000)
    shoot(page, "generate")


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def test_upload_a_model_and_a_bad_file(page, tmp_path: Path):
    from vae_explorer.checkpoint import shipped_checkpoints

    good = tmp_path / "mine.safetensors"
    good.write_bytes(shipped_checkpoints()["digits-conditional"].read_bytes())
    page.get_by_text("Model file").click()
    upload = page.locator("#checkpoint-upload input[type=file]")
    upload.set_input_files(str(good))
    page.wait_for_function(
        "document.querySelector('#train-status')?.innerText.includes('Loaded mine.safetensors')",
        timeout=30_000,
    )
    sentinel = tmp_path / "pwned"
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(_Payload(sentinel)))
    page.locator("#checkpoint-upload button[aria-label='Clear']").first.click()
    page.locator("#checkpoint-upload input[type=file]").set_input_files(str(bad))
    page.get_by_text("pickle", exact=False).first.wait_for(timeout=30_000)
    assert not sentinel.exists()
    # The app keeps working with the model it had.
    _tab(page, "Generate")
    page.click("#sample-button")
    _wait_new_image(page, "#sample-grid", "")


def test_lecture_mode_from_the_address_and_the_toggle(browser, app_url, shoot):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(app_url + "?lecture=1")
    page.wait_for_selector("#recon-images img", timeout=60_000)
    page.wait_for_function("document.body.classList.contains('vx-lecture')", timeout=10_000)
    assert page.get_by_text("The objective").first.is_visible()
    assert not page.locator(".vx-advanced").first.is_visible()
    shoot(page, "lecture")
    page.locator("#lecture-toggle input").click()
    page.wait_for_function("!document.body.classList.contains('vx-lecture')", timeout=10_000)
    assert not page.get_by_text("The objective").first.is_visible()
    assert page.locator(".vx-advanced").first.is_visible()
    context.close()
