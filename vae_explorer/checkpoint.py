"""Checkpoints: one ``.safetensors`` file per model that describes itself.

Tensors: the model's state dict (float32) and, optionally, Adam's moments as
``optim.<param>.exp_avg`` / ``optim.<param>.exp_avg_sq``. Metadata (strings, JSON inside):
``format`` = "vae-explorer", ``format_version``, ``model_config``, ``run`` (data set, class
names, train config, history, step, epoch), ``optim_steps`` and ``metrics``.

Loading never unpickles. The header is checked before any tensor is read (size, JSON, format,
config limits), the tensors' names, dtypes and shapes are compared with a model rebuilt from the
config, and every value must be finite. Saving is atomic: a crash or a full disk leaves the
previous file as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .build import build_model
from .config import ModelConfig, RunInfo
from .model import LatentModel

FORMAT = "vae-explorer"
FORMAT_VERSION = "1"
MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any model this app builds
MAX_HEADER_BYTES = 100 << 20  # safetensors' own header limit
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
OPTIM_PREFIX = "optim."
OPTIM_MOMENTS = ("exp_avg", "exp_avg_sq")


@dataclass
class Checkpoint:
    model: LatentModel  # a VAE or a HierarchicalVAE
    run: RunInfo
    optimizer_state: dict | None = None  # torch.optim.Adam state dict, when one was saved
    metrics: dict[str, Any] = field(default_factory=dict)
    # What the app showed when this was saved (a lecturer's session: controls, lecture mode);
    # flat name → scalar, checked by ``check_session``; the UI decides what to restore.
    session: dict[str, Any] = field(default_factory=dict)


MAX_SESSION_KEYS = 64
MAX_SESSION_TEXT = 200


def check_session(session: Any) -> dict[str, Any]:
    """A session record must be a small flat JSON object of names → numbers, text, booleans or
    null: it is restored into the UI, so nothing nested, huge or non-finite gets through."""
    if not isinstance(session, dict) or len(session) > MAX_SESSION_KEYS:
        raise ValueError(f"the session record must be an object of at most {MAX_SESSION_KEYS} settings.")
    for key, value in session.items():
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise ValueError("a session setting has an invalid name.")
        ok = (
            value is None
            or isinstance(value, bool)
            or (isinstance(value, int) and abs(value) < 2**53)
            or (isinstance(value, float) and math.isfinite(value))
            or (isinstance(value, str) and len(value) <= MAX_SESSION_TEXT)
        )
        if not ok:
            raise ValueError(f"the session setting {key[:64]!r} has an invalid value.")
    return dict(session)


PICKLE_REFUSED = (
    "is a PyTorch pickle (.pt/.pth), not .safetensors: pickles are refused because unpickling a "
    "file can run any code on this computer. Save the weights with safetensors instead."
)


def _not_safetensors(name: str, why: str) -> ValueError:
    return ValueError(
        f"{name} is not a valid .safetensors file ({why}); note that .pt/.pth files are pickles, "
        "and pickles are refused because unpickling can run code."
    )


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a safetensors file's framing and return (tensor entries, metadata) unread."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
            # A safetensors file is an 8-byte little-endian header length, then a JSON object.
            # Pickles start with 0x80 and zip-format torch files with "PK"; a header length whose
            # low byte is 0x80 is legal, so the '{' after it tells the two apart.
            if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
                raise ValueError(f"{path.name} {PICKLE_REFUSED}")
            if len(head) < 9:
                raise ValueError(f"{path.name} is too short to be a .safetensors file.")
            (n,) = struct.unpack("<Q", head[:8])
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise _not_safetensors(path.name, "corrupt header length")
            f.seek(8)
            raw = f.read(n)
    except FileNotFoundError:
        raise ValueError(f"the checkpoint {path} does not exist.") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a checkpoint file.") from None
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is {size / 2**20:.0f} MB, larger than any VAE Explorer model.")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_safetensors(path.name, "unreadable header") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} is not a valid .safetensors file (header is not an object).")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path.name} has malformed metadata.")
    return header, meta


def _json_field(meta: dict[str, str], key: str, name: str) -> Any:
    if key not in meta:
        raise ValueError(f"{name} has no '{key}' metadata; it was not saved by VAE Explorer.")
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError:
        raise ValueError(f"{name} has unreadable '{key}' metadata.") from None


def _expected(model: LatentModel) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild the model a checkpoint describes. Raises ValueError with a readable reason."""
    path = Path(path)
    entries, meta = read_header(path)
    name = path.name
    if meta.get("format") != FORMAT:
        raise ValueError(f"{name} is a .safetensors file but not a VAE Explorer checkpoint.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{name} has checkpoint format version {meta.get('format_version')!r}; "
            f"this VAE Explorer reads version {FORMAT_VERSION}."
        )
    try:
        config = ModelConfig.from_dict(_json_field(meta, "model_config", name))
        run = RunInfo.from_dict(_json_field(meta, "run", name), config.latent_dim)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"{name} has invalid metadata: {err}") from None
    model = build_model(config)
    expected = _expected(model)
    param_names = [n for n, _ in model.named_parameters()]
    optim_expected = {f"{OPTIM_PREFIX}{p}.{m}": expected[p] for p in param_names for m in OPTIM_MOMENTS}
    missing = sorted(set(expected) - set(entries))
    extra = sorted(set(entries) - set(expected) - set(optim_expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:4])}")
        raise ValueError(f"{name} does not match the model its config describes ({'; '.join(parts)}).")
    for key, info in entries.items():
        want = expected.get(key, optim_expected.get(key))
        if not isinstance(info, dict):
            raise ValueError(f"{name}: the header entry of tensor {key} is malformed.")
        if info.get("dtype") != "F32":
            raise ValueError(f"{name}: tensor {key} must be float32 (F32), got {info.get('dtype')!r}.")
        shape = info.get("shape")
        if not isinstance(shape, list) or tuple(shape) != want:
            raise ValueError(f"{name}: tensor {key} has shape {shape!r}, expected {list(want)}.")
    try:
        tensors = st_load(path.read_bytes())
    except Exception as err:
        raise ValueError(f"{name} is not a valid .safetensors file ({err}).") from None
    for key, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: tensor {key} contains NaN or infinite values.")
    model.load_state_dict({k: tensors[k] for k in expected})
    model.to(device)
    optim_state = None
    if any(k.startswith(OPTIM_PREFIX) for k in tensors):
        optim_state = _optimizer_state(model, tensors, meta, name)
    metrics = _json_field(meta, "metrics", name) if "metrics" in meta else {}
    session = _json_field(meta, "session", name) if "session" in meta else {}
    try:
        session = check_session(session)
    except ValueError as err:
        raise ValueError(f"{name} has invalid metadata: {err}") from None
    return Checkpoint(model, run, optim_state, metrics if isinstance(metrics, dict) else {}, session)


def _optimizer_state(model: LatentModel, tensors: dict, meta: dict[str, str], name: str) -> dict:
    steps = _json_field(meta, "optim_steps", name)
    if not isinstance(steps, dict):
        raise ValueError(f"{name} has malformed optimizer metadata.")
    fresh = torch.optim.Adam(model.parameters()).state_dict()
    state = {}
    for i, (pname, p) in enumerate(model.named_parameters()):
        keys = [f"{OPTIM_PREFIX}{pname}.{m}" for m in OPTIM_MOMENTS]
        if not all(k in tensors for k in keys):
            continue
        step = steps.get(pname)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 <= step < 2**53:
            raise ValueError(f"{name} has an invalid optimizer step count for {pname}.")
        state[i] = {
            "step": torch.tensor(float(step)),
            "exp_avg": tensors[keys[0]].to(p.device),
            "exp_avg_sq": tensors[keys[1]].to(p.device),
        }
    fresh["state"] = state
    return fresh


def save_checkpoint(
    path: str | os.PathLike,
    model: LatentModel,
    run: RunInfo,
    optimizer: torch.optim.Optimizer | None = None,
    metrics: dict[str, Any] | None = None,
    session: dict[str, Any] | None = None,
) -> Path:
    """Write model (+ optimizer moments) and metadata atomically: temporary file, fsync, rename.
    ``session``: the app's settings to restore with the model (see ``check_session``)."""
    path = Path(path)
    session = check_session(session or {})
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in model.state_dict().items()
    }
    optim_steps: dict[str, float] = {}
    if optimizer is not None:
        by_param = {id(p): n for n, p in model.named_parameters()}
        for p, st in optimizer.state.items():
            pname = by_param.get(id(p))
            if pname is None or "exp_avg" not in st:
                continue
            for m in OPTIM_MOMENTS:
                moment = st[m].detach().to("cpu", torch.float32).contiguous().clone()
                tensors[f"{OPTIM_PREFIX}{pname}.{m}"] = moment
            optim_steps[pname] = float(st["step"])
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": json.dumps(model.config.to_dict()),
        "run": json.dumps(run.to_dict()),
        "optim_steps": json.dumps(optim_steps),
        "metrics": json.dumps(metrics or {}),
        "session": json.dumps(session, allow_nan=False),
    }
    data = st_save(tensors, metadata=meta)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(folder)
    except OSError as err:
        raise ValueError(
            f"could not save {path} ({err.strerror or err}); any earlier file there is unchanged."
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def shipped_checkpoints() -> dict[str, Path]:
    """The pretrained models shipped in ``checkpoints/``, by file stem."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.safetensors"))}
