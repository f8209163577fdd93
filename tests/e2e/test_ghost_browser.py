"""The previous run as a ghost in a real browser: after Start, the run it replaced is drawn
faintly on the Train plots; the checkbox hides it, and it stays hidden while training updates."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

GHOSTS = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  return gd ? gd.data.filter((t) => t.legendgroup === 'previous run').map((t) => t.visible ?? true) : null;
}"""


def test_the_previous_run_is_drawn_and_the_checkbox_hides_it(page, shoot):
    epochs = page.locator("#train-epochs input[type=number]")
    epochs.fill("3")
    epochs.press("Enter")
    page.click("#train-start")
    # The shipped model's own run (its epochs) is the previous run of this one.
    page.wait_for_function(f"({GHOSTS})('#recon-plot')?.length > 0", timeout=60_000)
    assert page.evaluate(GHOSTS, "#kl-plot")
    page.locator("#ghost-toggle input").click()
    for sel in ("#recon-plot", "#kl-plot"):
        page.wait_for_function(f"({GHOSTS})('{sel}').every((v) => v === 'legendonly')", timeout=10_000)
    # Training goes on and the plots are redrawn: the ghost stays hidden.
    page.wait_for_function(
        "document.querySelector('#train-progress')?.innerText.includes('Finished')", timeout=120_000
    )
    assert all(v == "legendonly" for v in page.evaluate(GHOSTS, "#recon-plot"))
    page.locator("#ghost-toggle input").click()
    page.wait_for_function(f"({GHOSTS})('#recon-plot').every((v) => v === true)", timeout=10_000)
    shoot(page, "ghost-run", full_page=False)
