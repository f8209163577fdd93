"""Security promises that need no running server: where the app listens, how large an upload
may be, the hosted limits an uploaded model must respect, and dependency floors that carry the
known security fixes."""

from __future__ import annotations

import ast
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# First releases with the fixes the floors promise (see the comments in requirements.txt).
FIXED_IN = {
    "gradio": ("6.16.0", "CVE-2026-28414 (6.7.0), GHSA-j36p-7w88-g82j FileExplorer path traversal (6.16.0)"),
    "torch": ("2.10.0", "torch.load(weights_only=True) code execution: CVE-2025-32434, CVE-2026-24747"),
    "torchvision": ("0.25.0", "the torchvision release of torch 2.10"),
    "pillow": ("11.3.0", "CVE-2023-4863, CVE-2023-50447, CVE-2024-28219, CVE-2025-48379"),
}


def _requirements(lines) -> dict[str, Requirement]:
    reqs = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            reqs[req.name.lower()] = req
    return reqs


def _floor(req: Requirement) -> Version:
    (floor,) = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return floor


@pytest.fixture(scope="module")
def requirements():
    return _requirements((ROOT / "requirements.txt").read_text().splitlines())


def test_pyproject_declares_the_same_requirements(requirements):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    declared = _requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert {k: str(v.specifier) for k, v in declared.items()} == {
        k: str(v.specifier) for k, v in requirements.items()
    }


@pytest.mark.parametrize("name", list(FIXED_IN))
def test_dependency_floors_include_the_known_security_fixes(requirements, name):
    fixed, why = FIXED_IN[name]
    floor = _floor(requirements[name])
    assert floor >= Version(fixed), f"{name}>={floor} allows releases without: {why}"
    installed = Version(metadata.version(name))
    assert installed in requirements[name].specifier, f"installed {name} {installed} is below the floor"


# ----------------------------------------------------------------------------- where it listens


def test_the_app_listens_on_this_machine_only_unless_told(monkeypatch):
    from vae_explorer.ui import launch_kwargs

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    kw = launch_kwargs()
    assert kw["server_name"] == "127.0.0.1" and kw["server_port"] == 7860
    monkeypatch.setenv("GRADIO_SERVER_NAME", "")
    assert launch_kwargs()["server_name"] == "127.0.0.1"  # empty means unset
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Space (or a lecturer's LAN) sets
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8080")
    kw = launch_kwargs()
    assert kw["server_name"] == "0.0.0.0" and kw["server_port"] == 8080
    monkeypatch.setenv("GRADIO_SERVER_PORT", "eighty")
    with pytest.raises(ValueError, match=r"GRADIO_SERVER_PORT must be a port number, got 'eighty'"):
        launch_kwargs()


def test_app_py_launches_with_launch_kwargs_and_nothing_else():
    tree = ast.parse((ROOT / "app.py").read_text())
    launches = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "launch"
    ]
    assert len(launches) == 1
    call = launches[0]
    assert call.args == [] and len(call.keywords) == 1 and call.keywords[0].arg is None
    assert ast.unparse(call.keywords[0].value) == "launch_kwargs()"


# ----------------------------------------------------------------------------- uploads


def test_uploads_are_capped_at_what_the_limits_let_a_user_build():
    from vae_explorer import images
    from vae_explorer.limits import HOSTED, HOSTED_UPLOADS, Limits, UploadLimits
    from vae_explorer.ui import launch_kwargs, max_upload_bytes
    from vae_explorer.ui.common import LIMITS

    cap = launch_kwargs()["max_file_size"]
    assert isinstance(cap, int) and cap == max_upload_bytes(LIMITS)
    assert cap >= images.MAX_BYTES
    # Tighter limits, a smaller cap: a Space accepts less than a laptop.
    assert max_upload_bytes(HOSTED, HOSTED_UPLOADS) < max_upload_bytes(Limits(), UploadLimits())
    small = UploadLimits(max_upload_bytes=1)
    assert max_upload_bytes(Limits(max_hidden=8, max_latent=1), small) == images.MAX_BYTES
    # An uploaded data set may be larger than any model: then it sets the cap.
    big = UploadLimits(max_upload_bytes=300 * 2**20)
    assert max_upload_bytes(Limits(), big) == big.max_upload_bytes
    assert max_upload_bytes(Limits()) < 100 * 2**20


def test_an_uploaded_model_beyond_the_hosted_limits_is_refused(tmp_path):
    """Limits are checked on load too, the lower latent of a hierarchical model included."""
    import torch

    from vae_explorer.build import build_model
    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import ModelConfig, RunInfo
    from vae_explorer.limits import HOSTED
    from vae_explorer.session import Workspace

    ws = Workspace.from_shipped(limits=HOSTED, device=torch.device("cpu"))
    before = {k: v.clone() for k, v in ws.model.state_dict().items()}
    cases = {
        "wide": (dict(hidden_dim=HOSTED.max_hidden + 8), r"hidden layer may have at most 512"),
        "latent": (dict(latent_dim=HOSTED.max_latent + 1), r"latent may have at most 32"),
        "lower latent": (
            dict(arch="hierarchical", bottom_latent_dim=HOSTED.max_latent + 1),
            r"lower latent z₁ may have at most 32",
        ),
    }
    for name, (changes, pattern) in cases.items():
        cfg = ModelConfig(**{"input_shape": (1, 8, 8), "latent_dim": 2, "hidden_dim": 16, **changes})
        path = save_checkpoint(tmp_path / f"{name}.safetensors", build_model(cfg), RunInfo(dataset="digits"))
        with pytest.raises(ValueError, match=pattern):
            ws.load(path)
    assert all(torch.equal(v, before[k]) for k, v in ws.model.state_dict().items())
    ok = ModelConfig(
        input_shape=(1, 8, 8),
        arch="hierarchical",
        latent_dim=2,
        hidden_dim=16,
        bottom_latent_dim=HOSTED.max_latent,
    )
    ws.load(save_checkpoint(tmp_path / "ok.safetensors", build_model(ok), RunInfo(dataset="digits")))
    assert ws.model.config == ok


def test_readme_security_promises_point_at_tests_that_exist():
    """The README's Security section (when present) cites tests by name; each must exist."""
    readme = (ROOT / "README.md").read_text()
    if "## Security" not in readme:
        pytest.skip("the README has no Security section yet")
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    cited = set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", section))
    assert cited
    for path, name in cited:
        source = (ROOT / path).read_text()
        assert not name or re.search(rf"def {name}\b", source), f"{path}::{name} does not exist"
