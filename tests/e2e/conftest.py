"""Browser tests: the real app in a subprocess, driven by Playwright in headless Chromium.

Debian's /usr/bin/chromium is used when present, else Playwright's own browser if installed.
Without a browser these tests are skipped, unless VAE_EXPLORER_REQUIRE_BROWSER=1 (set by
.ci/run), which makes a missing browser a failure. With VAE_EXPLORER_UPDATE_SCREENSHOTS=1 the
screenshots go to docs/images/ (the README's pictures); otherwise to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(reason: str):
    if os.environ.get("VAE_EXPLORER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=ARGS) if exe else p.chromium.launch(args=ARGS)
        except Exception as err:
            _missing(f"no Chromium could be started ({type(err).__name__})")
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_url():
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("app.py did not answer within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def page(browser, app_url):
    """A fresh browser session (its own workspace) on the opened app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(app_url)
    pg.wait_for_selector("#recon-images img", timeout=60_000)
    yield pg
    context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def shoot(tmp_path_factory):
    """shoot(page, name[, full_page]): a screenshot of the whole page (or of what the window
    shows), scaled to 900 px wide (small PNGs)."""
    if os.environ.get("VAE_EXPLORER_UPDATE_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "images"
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = tmp_path_factory.mktemp("screens")

    def _shoot(page, name: str, full_page: bool = True) -> Path:
        import io

        from PIL import Image

        im = Image.open(io.BytesIO(page.screenshot(full_page=full_page))).convert("RGB")
        im = im.resize((900, round(im.height * 900 / im.width)), Image.Resampling.LANCZOS)
        path = out / f"{name}.png"
        im.quantize(colors=256).save(path, optimize=True)
        return path

    return _shoot
