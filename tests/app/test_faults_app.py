"""Faults the launched app survives: a tab closed mid-training, a session whose workspace
expired, and the server process killed and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .raw_http import dependency, free_port, heartbeat, join, launch, messages, run_event

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

from vae_explorer.checkpoint import load_checkpoint, shipped_checkpoints  # noqa: E402
from vae_explorer.session import DEFAULT_CHECKPOINT  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"dataset": "digits", "arch": "mlp", "latent_dim": 2, "hidden_dim": 64, "batch_size": 64, "seed": 0}
STEPS_PER_EPOCH = 23  # 1,437 digits / 64
TTL = 3.0  # seconds a session's workspace is kept without use, in the expiry app


def _client(url, session: str | None = None):
    c = gradio_client.Client(url, verbose=False)
    if session is not None:
        c.session_hash = session  # the same browser session, seen from a script
    return c


def _until_idle(c, seconds: float = 60) -> dict:
    deadline = time.time() + seconds
    info = c.predict(api_name="/model_info")
    while info["training"] and time.time() < deadline:
        time.sleep(0.2)
        info = c.predict(api_name="/model_info")
    return info


@pytest.fixture(scope="module")
def expiring_url():
    """The app with sessions that expire after TTL seconds without use."""
    from vae_explorer.ui import build_app, common

    mp = pytest.MonkeyPatch()
    mp.setattr(common, "SESSION_TTL", TTL)
    demo = build_app()  # the State takes its time to live from SESSION_TTL here
    mp.undo()
    local_url = launch(demo)
    try:
        yield local_url
    finally:
        demo.close()


def _train_data(url: str, **changes) -> list:
    api = _client(url).view_api(return_format="dict", print_info=False)["named_endpoints"]["/train"]
    values = {p["parameter_name"]: p["parameter_default"] for p in api["parameters"]} | TRAIN | changes
    return [None] + [values[p["parameter_name"]] for p in api["parameters"]]  # the State first


def test_a_tab_closed_mid_training_ends_it_and_the_workspace_trains_again(url):
    """The browser keeps a heartbeat connection open; when it drops (the tab closes), Gradio
    closes the running handler's generator. Training must end between two steps, with the model
    and Adam in step, and the same session must be able to train again."""
    from vae_explorer.checkpoint import load_checkpoint

    session = uuid.uuid4().hex
    fn_index, _ = dependency(url, api_name="train")
    with heartbeat(url, session) as tab:
        assert next(tab.iter_lines()).startswith("data: ALIVE")
        event_id = join(url, fn_index, _train_data(url, epochs=150), session)
        stream = messages(url, session)
        updates = 0
        for msg in stream:
            assert msg.get("msg") != "process_completed", msg
            if msg.get("event_id") == event_id and msg.get("msg") == "process_generating":
                updates += 1
                if updates == 2:  # the first frame and one from inside the training loop
                    break
        stream.close()
    # The tab is closed. The same session, reopened from a script:
    c = _client(url, session)
    info = _until_idle(c)
    assert not info["training"], "training kept running after its tab closed"
    time.sleep(1.0)
    assert c.predict(api_name="/model_info")["step"] == info["step"]  # no runaway thread
    assert 0 < info["step"] < 150 * STEPS_PER_EPOCH
    ck = load_checkpoint(c.predict(api_name="/save_checkpoint"))
    assert ck.run.step == info["step"]
    assert {int(s["step"]) for s in ck.optimizer_state["state"].values()} == {info["step"]}
    done = c.predict(**TRAIN, epochs=1, api_name="/continue_training")
    assert "Finished" in done[0]
    # Continue finishes the interrupted epoch (the same batch size: its batches go on).
    left = STEPS_PER_EPOCH - info["step"] % STEPS_PER_EPOCH
    assert c.predict(api_name="/model_info")["step"] == info["step"] + left


def test_an_expired_session_gets_a_fresh_workspace_and_is_told_so(expiring_url):
    url = expiring_url
    c = _client(url)
    shipped = c.predict(api_name="/model_info")["weights_sha256"]
    c.predict(**{**TRAIN, "seed": 11}, epochs=1, api_name="/train")
    assert c.predict(api_name="/model_info")["weights_sha256"] != shipped
    time.sleep(TTL + 2.5)  # unused past its time to live; Gradio sweeps expired state every second
    fn_index, _ = dependency(url, api_name="model_info")
    done, seen = run_event(url, fn_index, [None], c.session_hash)
    assert done["success"]
    notes = [m["log"] for m in seen if m.get("msg") == "log"]
    fresh = f"A fresh workspace with the shipped {DEFAULT_CHECKPOINT} model was started"
    assert any(n.startswith(fresh) for n in notes), notes
    info = c.predict(api_name="/model_info")
    assert info["weights_sha256"] == shipped and not info["training"]
    # The fresh workspace works like any other.
    assert "Finished" in c.predict(**TRAIN, epochs=1, api_name="/train")[0]


def test_opening_the_page_builds_the_workspace_without_a_notice(expiring_url):
    cfg = httpx.get(f"{expiring_url}config", timeout=30).json()
    (load,) = [d for d in cfg["dependencies"] if [t[1] for t in d["targets"]] == ["load"] and d["backend_fn"]]
    session = uuid.uuid4().hex
    done, seen = run_event(expiring_url, load["id"], [None], session)
    assert done["success"] and not [m for m in seen if m.get("msg") == "log"]
    assert "Ready" in done["output"]["data"][1]  # the Train tab's status: a workspace exists
    done, seen = run_event(expiring_url, dependency(expiring_url, api_name="model_info")[0], [None], session)
    assert done["success"] and not [m for m in seen if m.get("msg") == "log"]  # the same workspace


def test_a_new_sessions_first_event_before_the_page_load_gets_no_expiry_notice(expiring_url):
    """A click that beats the page load (or a script's first call) starts the workspace quietly:
    the session never had one, so nothing expired."""
    session = uuid.uuid4().hex
    done, seen = run_event(expiring_url, dependency(expiring_url, api_name="model_info")[0], [None], session)
    assert done["success"] and not [m for m in seen if m.get("msg") == "log"]


def _start_app(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("GRADIO_SERVER_NAME", None)
    return subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, "the app exited while starting"
        try:
            if httpx.get(f"{url}config", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the app did not start")


def _snapshot(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def test_the_server_killed_mid_training_restarts_with_every_model_loadable(tmp_path):
    shipped_before = _snapshot(ROOT / "checkpoints")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = _start_app(port)
    try:
        _wait_up(url, proc)
        c = _client(url)
        c.predict(**{**TRAIN, "seed": 3}, epochs=1, api_name="/train")
        mine = c.predict(api_name="/model_info")["weights_sha256"]
        saved = c.predict(api_name="/save_checkpoint")  # downloaded by the client: a local copy
        job = c.submit(**TRAIN, epochs=150, api_name="/train")
        deadline = time.time() + 120
        while len(job.outputs()) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(job.outputs()) >= 2
        proc.send_signal(signal.SIGKILL)  # the Space restarts: no shutdown, no cleanup
        proc.wait(60)
        c.close()
        proc = _start_app(port)
        _wait_up(url, proc)
        c = _client(url)
        info = c.predict(api_name="/model_info")
        shipped = load_checkpoint(shipped_checkpoints()[DEFAULT_CHECKPOINT]).run
        assert (info["dataset"], info["epoch"]) == (shipped.dataset, shipped.epoch) and not info["training"]
        for name in ("digits-conditional", "digits-2d"):
            c.predict(name, api_name="/load_checkpoint")
        c.predict(handle_file(saved), api_name="/upload_checkpoint")
        assert c.predict(api_name="/model_info")["weights_sha256"] == mine
        assert _snapshot(ROOT / "checkpoints") == shipped_before  # nothing written among them
    finally:
        proc.kill()
        proc.wait(60)


def test_a_full_disk_during_a_download_is_a_clear_message_and_the_session_goes_on(url, monkeypatch):
    """The disk fills up while the server saves a model for download: the user reads why, and
    the session's model is untouched. Only the checkpoint's own fsync fails (the rest of the
    server keeps its disk)."""
    import errno

    from gradio_client.exceptions import AppError

    import vae_explorer.checkpoint as ckpt_mod

    real_fsync = os.fsync
    failed = []

    def fsync(fd):
        if ".safetensors." in os.readlink(f"/proc/self/fd/{fd}"):  # save_checkpoint's temporary
            failed.append(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc to tell the checkpoint's file from others")
    c = _client(url)
    before = c.predict(api_name="/model_info")["weights_sha256"]
    monkeypatch.setattr(ckpt_mod.os, "fsync", fsync)
    with pytest.raises(AppError, match=r"^Could not save .*No space left on device.*unchanged\.$"):
        c.predict(api_name="/save_checkpoint")
    monkeypatch.undo()
    assert failed
    assert c.predict(api_name="/model_info")["weights_sha256"] == before
    assert str(c.predict(api_name="/save_checkpoint")).endswith(".safetensors")  # disk space back
