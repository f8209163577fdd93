"""A link that carries the lecture, in a real browser: opening it sets the controls, opens its
tab, hides the named controls and says what it did not take; Copy link makes such a link."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_a_shared_link_sets_the_controls_and_copy_link_makes_one(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app_url + "?dataset=digits&epochs=3&beta=4&hide=seed&tab=elbo&foo=1")
    page.wait_for_selector("#recon-images img", state="attached", timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#share-note')?.innerText.includes('3 settings set')", timeout=30_000
    )
    assert "'foo'" in page.locator("#share-note").inner_text()
    selected = page.locator('button[role="tab"][aria-selected="true"]').first
    assert selected.inner_text().strip() == "Inside the ELBO"
    page.get_by_role("tab", name="Train").click()
    assert page.locator("#train-epochs input[type=number]").input_value() == "3"
    assert page.get_by_label("Seed").count() == 0  # hidden for this exercise
    page.click("#copy-link")
    page.wait_for_function(
        "document.querySelector('#share-link textarea')?.value.includes('beta=4.0')", timeout=20_000
    )
    link = page.locator("#share-link textarea").input_value()
    assert link.startswith(app_url) and "dataset=digits" in link and "epochs=3" in link
    context.close()
    assert not errors, errors
