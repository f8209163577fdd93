"""The load benchmark (bench/bench_load.py) in small: the same code, run against the real
`python app.py`, with a few sessions. It asserts what must hold on any machine — no errors,
every image a session received comes from its own model, workspaces expire — and no timings
(CI machines are too noisy for those; the figures are in the README)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_load


@pytest.mark.slow
def test_sessions_under_load_get_no_errors_and_only_their_own_model():
    settings = bench_load.Settings(
        clients=6,
        requests=len(bench_load.OPS),  # every kind of call once per phase
        think=0.0,
        trainers=1,
        train_dataset="digits",
        train_epochs=200,  # runs until the phase ends and it is stopped
        ttl=5.0,
        timeout=60.0,
        engine="mixed",  # half the sessions are gradio_client Clients, half a browser's requests
    )
    report = bench_load.run(settings, log=lambda *a: None)

    assert report["errors"]["count"] == 0, report["errors"]["first"]
    (training,) = report["trainings"]
    assert training["started_s"] is not None and training["error"] is None, training
    assert any(key.endswith(" training") for key in report["latency"]), "no call overlapped the training"
    iso = report["isolation"]
    assert iso["ok"], iso
    assert iso["images_checked"] >= 6 * 2 * len(bench_load.OPS)
    assert iso["distinct_weight_hashes"] == iso["distinct_fingerprints"] == 6
    # After the TTL every session finds a fresh workspace: the old ones were dropped.
    assert report["expiry"]["ok"], report["expiry"]


def test_an_image_rewritten_while_it_is_read_is_never_seen_half_written(tmp_path):
    """Gradio caches a returned image under the hash of its bytes and (unpatched) rewrites that
    file in place each time it is returned again; the app's patch never exposes a partial file."""
    from gradio import processing_utils

    from vae_explorer.ui import common  # noqa: F401 - installs the patch

    image = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    path = processing_utils.save_img_array_to_cache(image, str(tmp_path), format="png")
    size = os.path.getsize(path)
    stop = threading.Event()

    def rewrite():
        while not stop.is_set():
            assert processing_utils.save_img_array_to_cache(image, str(tmp_path), format="png") == path

    writer = threading.Thread(target=rewrite)
    writer.start()
    sizes = []
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            sizes.append(len(Path(path).read_bytes()))
    finally:
        stop.set()
        writer.join()
    assert sizes and set(sizes) == {size}
    assert sorted(p.name for p in Path(path).parent.iterdir()) == ["image.png"]  # no temporary left
