"""What a hostile script can send to the launched app, beyond the form: the latent map's click
payloads, uploads over the size cap, file references to the server's own files, paths hidden in
a checkpoint, and where the server listens."""

from __future__ import annotations

import dataclasses
import math
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from .raw_http import call, dependency, file_data, free_port, run_event, upload

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """The app launched with launch_kwargs() as app.py does, the address included: only the
    port is chosen (through GRADIO_SERVER_PORT, the documented variable)."""
    import os

    from vae_explorer.ui import build_app, launch_kwargs

    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_SERVER_PORT", str(free_port()))
    mp.delenv("GRADIO_SERVER_NAME", raising=False)
    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=64)
    kw = launch_kwargs()
    assert kw["server_name"] == "127.0.0.1" and kw["server_port"] == int(os.environ["GRADIO_SERVER_PORT"])
    _, local_url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    try:
        yield local_url
    finally:
        demo.close()
        mp.undo()


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


# ----------------------------------------------------------------------------- where it listens


def test_the_server_answers_on_loopback_only(url):
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    assert httpx.get(url, timeout=10).status_code == 200
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(OSError), socket.create_connection((ip, port), timeout=3):
        pass  # refused: nothing listens on the machine's network address


# ----------------------------------------------------------------------------- the latent map's clicks

CLICK_PAYLOADS = {
    "NaN x": {"x": math.nan, "y": 0.0},
    "Infinity y": {"x": 0.0, "y": math.inf},
    "-Infinity x": {"x": -math.inf, "y": 0.0},
    "huge": {"x": 1e308, "y": -1e308},
    "beyond the map": {"x": 2e6, "y": 0.0},
    "strings": {"x": "0.5", "y": "abc"},
    "number overflowing a float": {"x": "1e999", "y": 0},
    "booleans": {"x": True, "y": False},
    "nested junk": {"x": {"x": 1, "y": 2}, "y": [[0.5]]},
    "missing y": {"x": 0.5},
    "null": None,
    "a list": [0.5, 0.5],
    "a string": "x=0.5,y=0.5",
    "a number": 7,
    "long list": {"x": list(range(100_000)), "y": 0},
}


@pytest.fixture(scope="module")
def click(url):
    return dependency(url, elem_id="latent-map", trigger="click")


@pytest.mark.parametrize("case", list(CLICK_PAYLOADS), ids=list(CLICK_PAYLOADS))
def test_a_hostile_map_click_gets_a_clear_error(url, click, case):
    fn_index, trigger_id = click
    done, _ = run_event(
        url, fn_index, [None, None, "identity", 2000], event_data=CLICK_PAYLOADS[case], trigger_id=trigger_id
    )
    assert done["success"] is False
    assert done["output"]["error"] in (
        "x must be a number from -1e+06 to 1e+06.",
        "y must be a number from -1e+06 to 1e+06.",
    )


def test_a_valid_map_click_decodes_and_the_server_survived_the_hostile_ones(url, click):
    fn_index, trigger_id = click
    session = uuid.uuid4().hex
    done, _ = run_event(
        url,
        fn_index,
        [None, None, "identity", 2000],
        session,
        event_data={"x": 0.25, "y": -0.5},
        trigger_id=trigger_id,
    )
    assert done["success"] is True
    assert done["output"]["data"][2] == "z = [0.250, -0.500]"
    # A payload nested far deeper than any JSON parser's recursion: refused, and the server lives.
    deep = (
        '{"data": [null, null, "identity", 2000], "event_data": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    )
    r = httpx.post(f"{url}gradio_api/queue/join", content=deep, headers={"content-type": "application/json"})
    assert r.status_code >= 400
    assert _client(url).predict(api_name="/model_info")["dataset"] == "mnist-10k"


# ----------------------------------------------------------------------------- uploads


def test_uploads_over_the_cap_are_refused_by_the_client_and_by_the_server(url, tmp_path):
    from vae_explorer.ui import launch_kwargs

    cap = launch_kwargs()["max_file_size"]
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as f:
        f.truncate(cap + 1)  # sparse: no disk used, every byte still sent
    c = _client(url)
    before = c.predict(api_name="/model_info")["weights_sha256"]
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        c.predict(handle_file(str(big)), api_name="/upload_checkpoint")
    # A script that skips the client's check is refused by the server itself.
    with open(big, "rb") as f:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.safetensors", f)}, timeout=120)
    assert r.status_code == 413
    at_cap = tmp_path / "at_cap.bin"
    with open(at_cap, "wb") as f:
        f.truncate(cap)
    assert upload(url, at_cap)  # exactly the cap is accepted (and then refused as no checkpoint)
    assert c.predict(api_name="/model_info")["weights_sha256"] == before


def test_the_largest_model_a_user_can_build_uploads_again(tmp_path):
    """The cap is not below what the app itself lets a user download: the widest model the
    limits allow, with Adam's moments, fits (a smaller fixed cap once refused a user's own
    trained MNIST model)."""
    import torch

    from vae_explorer.build import build_model
    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import ARCHS, ModelConfig, RunInfo
    from vae_explorer.records import EpochRecord
    from vae_explorer.ui import launch_kwargs
    from vae_explorer.ui.common import LIMITS

    cap = launch_kwargs()["max_file_size"]
    for arch in ARCHS:
        cfg = ModelConfig(
            input_shape=(1, 28, 28),
            arch=arch,
            hidden_dim=LIMITS.max_hidden,
            latent_dim=LIMITS.max_latent,
            bottom_latent_dim=LIMITS.max_latent,
            likelihood="gaussian",
            gaussian_variance="learned",
            conditional=True,
        )
        model = build_model(cfg)
        opt = torch.optim.Adam(model.parameters())
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        opt.step()  # Adam's two moments now exist for every parameter
        # A full history of epoch records with long numbers, the largest a run can write.
        scalars = {f.name: 123.456789 for f in dataclasses.fields(EpochRecord) if f.type in ("float", float)}
        history = [
            EpochRecord(
                **scalars,
                epoch=i,
                step=i * 1000,
                test_kl_levels=[0.123456789] * 2,
                kl_per_dim=[0.123456789] * cfg.latent_dim,
                active_units=cfg.latent_dim,
                collapsed=False,
                skipped_steps=0,
            )
            for i in range(LIMITS.max_epochs)
        ]
        path = save_checkpoint(
            tmp_path / f"{arch}.safetensors",
            model,
            dataclasses.replace(RunInfo(dataset="mnist"), history=history),
            opt,
        )
        assert path.stat().st_size <= cap, (arch, path.stat().st_size, cap)


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/tmp/gradio/../../etc/passwd",
        "{root}/app.py",
        "{root}/checkpoints/digits-2d.safetensors",
    ],
)
def test_the_file_route_serves_none_of_the_servers_own_files(url, path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    r = httpx.get(f"{url}gradio_api/file={path.format(root=root)}", timeout=10)
    assert r.status_code in (403, 404)
    assert "root:" not in r.text and "build_app" not in r.text


@pytest.mark.parametrize(
    "endpoint, data",
    [
        ("/upload_checkpoint", ["{root}/checkpoints/digits-conditional.safetensors"]),
        ("/encode_image", ["identity", 2000, "/etc/passwd"]),
        ("/encode_image", ["identity", 2000, "{root}/docs/images/latent.png"]),
    ],
)
def test_a_file_reference_that_was_never_uploaded_is_refused(url, endpoint, data):
    """The browser sends uploaded files as references; a script can name any path on the server
    instead. Gradio refuses any file that did not come through its upload route."""
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    args = [file_data(v.format(root=root)) if "/" in str(v) else v for v in data]
    session = uuid.uuid4().hex
    c = _client(url)
    c.session_hash = session
    before = c.predict(api_name="/model_info")
    fn_index, _ = dependency(url, api_name=endpoint.strip("/"))
    done, _ = run_event(url, fn_index, [None, *args], session)
    assert done["success"] is False
    after = c.predict(api_name="/model_info")
    assert after["weights_sha256"] == before["weights_sha256"] and not after["model_config"]["conditional"]


def test_a_file_reference_to_a_url_on_the_servers_network_is_refused(url):
    ref = {
        "path": "http://127.0.0.1:1/x.safetensors",
        "url": "http://127.0.0.1:1/x.safetensors",
        "meta": {"_type": "gradio.FileData"},
    }
    kind, _ = call(url, "/upload_checkpoint", [ref])
    assert kind == "error"


def test_a_checkpoint_naming_a_server_path_as_its_data_set_is_refused(url, tmp_path):
    """A checkpoint says which data set it was trained on; a crafted one naming a file on the
    server (npz:/etc/passwd, a path outside the data folder) must never make the server open it."""
    from vae_explorer.build import build_model
    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import ModelConfig, RunInfo

    c = _client(url)
    before = c.predict(api_name="/model_info")["weights_sha256"]
    model = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16))
    for name in ("npz:/etc/passwd", "npz:../../etc/shadow", "/etc/passwd", "../mnist", "MNIST", ""):
        path = save_checkpoint(tmp_path / "probe.safetensors", model, RunInfo(dataset=name))
        only = r"only mnist-10k, digits, mnist, fashion-mnist, kmnist can be used"
        with pytest.raises(AppError, match=only):
            c.predict(handle_file(str(path)), api_name="/upload_checkpoint")
    with pytest.raises(AppError, match=r"npz:/etc/passwd is not in the list of choices"):
        c.predict(dataset="npz:/etc/passwd", api_name="/train")
    assert c.predict(api_name="/model_info")["weights_sha256"] == before


def test_downloads_are_written_to_a_fresh_temporary_folder_each(url):
    """Saving for download writes only into a new folder under the temporary folder, never to a
    path a user names (the endpoint takes no path)."""
    import tempfile

    params = _client(url).view_api(return_format="dict", print_info=False)["named_endpoints"][
        "/save_checkpoint"
    ]["parameters"]
    assert not [p for p in params if p["component"] in ("File", "Textbox")]
    data = [p["parameter_default"] for p in params]
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("vae-explorer-*"))
    for _ in range(2):
        kind, out = call(url, "/save_checkpoint", data)
        assert kind == "complete", out
    new = set(temp.glob("vae-explorer-*")) - before
    assert len(new) == 2
    assert all([f.suffix for f in folder.iterdir()] == [".safetensors"] for folder in new)
