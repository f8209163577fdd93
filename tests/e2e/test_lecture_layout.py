"""What a lecture hall sees, on a projector's 1280×720 with ?lecture=1, in a fresh browser: the
Train and Latent space views above the fold, every digit at least 84 px on screen and drawn with
crisp pixels, one colour per class on every map, a thumbnail on hover, and no false notice."""

from __future__ import annotations

import urllib.request

import pytest

pytestmark = pytest.mark.slow

PROJECTOR = {"width": 1280, "height": 720}
MIN_DIGIT_PX = 84
TILE = 28 * 3 + 3  # a 28×28 digit enlarged 3× and its 3-px gap, in the PNG's own pixels

# On screen: the rendered size of one digit = (the tile's share of the PNG) × (rendered width).
DIGIT_PX_JS = """(sel) => {
  const img = document.querySelector(sel + ' img');
  if (!img || !img.naturalWidth) return null;
  const r = img.getBoundingClientRect();
  const scale = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);  // object-fit
  return {px: scale * 84, rendering: getComputedStyle(img).imageRendering, natural: img.naturalWidth};
}"""


def _lecture_page(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app_url + "?lecture=1")
    page.wait_for_selector("#recon-images img", timeout=60_000)
    page.wait_for_function("document.body.classList.contains('vx-lecture')", timeout=10_000)
    return context, page, errors


def _in_view(page, selector: str) -> bool:
    """The whole element lies inside the viewport, without scrolling."""
    box = page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                      return [r.top, r.left, r.bottom, r.right]; }""",
        selector,
    )
    top, left, bottom, right = box
    return (
        top >= 0 and left >= 0 and bottom <= PROJECTOR["height"] + 0.5 and right <= PROJECTOR["width"] + 0.5
    )


def _digits_readable(page, selector: str) -> None:
    page.wait_for_function(
        "(sel) => { const i = document.querySelector(sel + ' img'); return i && i.naturalWidth > 0; }",
        arg=selector,
        timeout=60_000,
    )
    got = page.evaluate(DIGIT_PX_JS, selector)
    assert got["rendering"] == "pixelated", f"{selector} is smoothed by the browser"
    assert got["px"] >= MIN_DIGIT_PX, f"{selector}: a digit is {got['px']:.0f} px on a 1280×720 projector"


def _no_notice(page) -> None:
    page.wait_for_timeout(1500)
    assert "fresh workspace" not in page.inner_text("body").lower()


def test_a_projector_sees_the_train_curves_and_the_latent_map_without_scrolling(browser, app_url, shoot):
    context, page, errors = _lecture_page(browser, app_url)
    _no_notice(page)  # a brand-new visitor on ?lecture=1 is told nothing about expired workspaces
    page.wait_for_selector("#recon-plot .js-plotly-plot", timeout=30_000)
    for sel in ("#train-start", "#recon-plot", "#kl-plot"):
        assert _in_view(page, sel), f"{sel} is below the fold at 1280×720 in lecture mode"
    for sel in ("#recon-images", "#train-samples"):
        _digits_readable(page, sel)
    shoot(page, "lecture-train", full_page=False)  # what the projector shows

    page.get_by_role("tab", name="Latent space").click()
    page.wait_for_selector("#latent-map canvas", timeout=30_000)
    _digits_readable(page, "#decoded-image")  # the prior's centre, decoded on opening
    for sel in ("#latent-map", "#decoded-image"):
        assert _in_view(page, sel), f"{sel} is below the fold at 1280×720 in lecture mode"
    shoot(page, "lecture-latent", full_page=False)
    _no_notice(page)
    context.close()
    assert not errors, errors


def test_every_digit_grid_is_readable_from_the_back_of_the_room(browser, app_url):
    context, page, errors = _lecture_page(browser, app_url)
    page.get_by_role("tab", name="Generate").click()
    for sel in ("#sample-grid", "#traverse-grid"):
        _digits_readable(page, sel)
    page.get_by_role("tab", name="Interpolate").click()
    for sel in ("#interp-frame", "#interp-strip"):
        _digits_readable(page, sel)
    page.get_by_role("tab", name="Latent space").click()
    page.click("#manifold-button")
    _digits_readable(page, "#manifold-grid")
    page.get_by_role("tab", name="AE vs VAE").click()
    for sel in ("#compare-ae-samples", "#compare-vae-samples", "#compare-ae-interp", "#compare-vae-interp"):
        _digits_readable(page, sel)
    page.get_by_role("tab", name="Failure lab").click()
    page.click("#lab-run")
    for sel in ("#lab-failure-recon", "#lab-failure-samples", "#lab-fix-recon", "#lab-fix-samples"):
        _digits_readable(page, sel)
    _no_notice(page)
    context.close()
    assert not errors, errors


def test_one_colour_per_class_on_every_map_and_a_thumbnail_on_hover(browser, app_url):
    from vae_explorer.ui.palette import CLASS_COLOURS

    context, page, errors = _lecture_page(browser, app_url)
    page.wait_for_function(
        """() => { const p = document.querySelector('#train-latent-map .js-plotly-plot');
                   return p && p.data && p.data.length >= 10; }""",
        timeout=30_000,
    )
    live = page.evaluate(
        """() => document.querySelector('#train-latent-map .js-plotly-plot').data
                   .map(t => [t.name, t.marker.color])"""
    )
    assert dict(live) == {str(k): CLASS_COLOURS[k] for k in range(10)}

    page.get_by_role("tab", name="Latent space").click()
    canvas = page.locator("#latent-map canvas")
    canvas.wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('#latent-map .vx-legend span').length >= 10", timeout=30_000
    )
    legend = page.evaluate(
        """() => [...document.querySelectorAll('#latent-map .vx-legend span')].map(
               s => [s.textContent, s.style.getPropertyValue('--c')])"""
    )
    assert dict(legend) == {str(k): CLASS_COLOURS[k] for k in range(10)}
    # Hover over the dense middle of the map until a point is under the pointer.
    box = canvas.bounding_box()
    thumb = page.locator("#latent-map .vx-thumb")
    for dx in range(-40, 41, 4):
        page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
        if thumb.is_visible():
            break
    assert thumb.is_visible(), "no thumbnail appeared over the map's points"
    style = page.evaluate(
        "() => { const t = document.querySelector('#latent-map .vx-thumb'); "
        "return [t.style.backgroundImage, t.getBoundingClientRect().width]; }"
    )
    url = style[0].split('"')[1]
    assert style[1] >= MIN_DIGIT_PX and "class" in page.inner_text("#latent-map .vx-tip")
    with urllib.request.urlopen(app_url + url, timeout=10) as r:  # the sheet is served
        assert r.read(8) == b"\x89PNG\r\n\x1a\n"

    page.get_by_role("tab", name="AE vs VAE").click()
    page.wait_for_function(
        "() => { const p = document.querySelector('#compare-vae-map .js-plotly-plot'); return p && p.data; }",
        timeout=60_000,
    )
    for side in ("ae", "vae"):
        traces = page.evaluate(
            f"""() => document.querySelector('#compare-{side}-map .js-plotly-plot').data
                       .filter(t => /^[0-9]$/.test(t.name)).map(t => [t.name, t.marker.color])"""
        )
        assert dict(traces) == {str(k): CLASS_COLOURS[k] for k in range(10)}
    context.close()
    assert not errors, errors


def test_a_brand_new_visitor_is_never_told_a_workspace_expired(browser, app_url):
    """Whatever the first event is: the address's ?lecture=1, the toggle, any tab's first load."""
    for first in ("lecture toggle", "Latent space", "Generate", "AE vs VAE"):
        context = browser.new_context(viewport=PROJECTOR)
        page = context.new_page()
        page.goto(app_url)
        if first == "lecture toggle":
            page.locator("#lecture-toggle input").click()
        else:
            page.get_by_role("tab", name=first).click()
        page.wait_for_selector("#recon-images img", state="attached", timeout=60_000)
        _no_notice(page)
        context.close()
