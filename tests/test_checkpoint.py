"""Checkpoints: exact round trips, refusal of pickles, validation of malformed files, atomic saves."""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import math
import os
import pathlib
import pickle
import re
import struct

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import vae_explorer.checkpoint as ckpt_mod
from vae_explorer.build import build_model
from vae_explorer.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoints
from vae_explorer.config import ModelConfig, RunInfo, TrainConfig
from vae_explorer.records import EpochRecord
from vae_explorer.trainer import Trainer

PACKAGE_DIR = pathlib.Path(ckpt_mod.__file__).resolve().parent

VARIANTS = {
    "mlp-bernoulli": {},
    "conditional": {"conditional": True},
    "gaussian-learned": {"likelihood": "gaussian", "gaussian_variance": "learned", "gaussian_std": 0.3},
    "conv": {"arch": "conv"},
    "hierarchical": {"arch": "hierarchical", "bottom_latent_dim": 4},
    "hierarchical-conditional": {"arch": "hierarchical", "conditional": True, "likelihood": "gaussian"},
}


# ----------------------------------------------------------------------------- helpers


def _train(model, data, *, seed: int = 0, epochs: int = 2, lr: float = 5e-3) -> Trainer:
    """A trainer that has taken a few optimiser steps (64 images / batch 16 = 4 steps an epoch)."""
    trainer = Trainer(model, data, TrainConfig(epochs=epochs, batch_size=16, lr=lr, seed=seed))
    records = list(trainer.run())
    assert sum(isinstance(r, EpochRecord) for r in records) == epochs
    return trainer


def _fixed_inputs(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.rand((5, *config.input_shape), generator=g)
    y = torch.tensor([0, 1, 2, 1, 0]) if config.conditional else None
    z = torch.randn((5, config.latent_dim), generator=g)
    return x, y, z


def _split(path: pathlib.Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and metadata, parsed here (not by the code under test)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    return st_load(data), meta


def _raw_file(header: bytes, body: bytes = b"") -> bytes:
    """safetensors framing by hand: 8-byte little-endian header length, header, data."""
    return struct.pack("<Q", len(header)) + header + body


class _Payload:
    """Unpickling this creates the sentinel file: the harmless stand-in for "runs any code"."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


@pytest.fixture
def saved(tmp_path, tiny_config, tiny_data):
    """A good checkpoint with optimizer moments, and the trainer that produced it."""
    trainer = _train(build_model(tiny_config, seed=1), tiny_data, epochs=1)
    path = tmp_path / "good.safetensors"
    # No history: its wall-clock timings would make the header length (and so the cases built from
    # this file) vary from run to run.
    run = dataclasses.replace(trainer.run_info(), history=[])
    save_checkpoint(path, trainer.model, run, trainer.optimizer)
    return path, trainer


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_round_trip_is_exact_and_training_resumes_identically(variant, tmp_path, tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, **VARIANTS[variant])
    trainer = _train(build_model(config, seed=7), tiny_data, seed=3, epochs=2)
    assert trainer.step == 8 and trainer.epoch == 2
    for rec in trainer.history:  # wall-clock fields: fixed, so that the file is the same every run
        rec.seconds, rec.images_per_s = 0.5, 128.0
    metrics = trainer.history[-1].to_dict()
    path = save_checkpoint(
        tmp_path / "m.safetensors", trainer.model, trainer.run_info(), trainer.optimizer, metrics=metrics
    )
    assert path == tmp_path / "m.safetensors" and path.is_file()

    ck = load_checkpoint(path)

    # Configuration and run record.
    assert ck.model.config == config
    assert ck.run.dataset == tiny_data.name
    assert ck.run.class_names == tiny_data.class_names
    assert ck.run.train == trainer.config
    assert ck.run.history == trainer.history and len(ck.run.history) == 2
    assert (ck.run.step, ck.run.epoch) == (8, 2)
    assert ck.metrics == metrics

    # Weights and buffers bit for bit, and therefore identical outputs.
    ref_state, got_state = trainer.model.state_dict(), ck.model.state_dict()
    assert ref_state.keys() == got_state.keys()
    for k in ref_state:
        assert torch.equal(ref_state[k], got_state[k]), k
    trainer.model.eval()
    ck.model.eval()
    x, y, z = _fixed_inputs(config)
    with torch.no_grad():
        qa, qb = trainer.model.encode(x, y), ck.model.encode(x, y)
        for a, b in ((qa.mean, qb.mean), (qa.logvar, qb.logvar)):
            assert torch.equal(a, b)
        assert torch.equal(trainer.model.decode(z, y), ck.model.decode(z, y))
    if variant == "gaussian-learned":
        # The learned per-pixel variance is a parameter that moved during training and came back.
        assert isinstance(ck.model.x_logvar, torch.nn.Parameter)
        assert not torch.allclose(ck.model.x_logvar, torch.full_like(ck.model.x_logvar, 2 * math.log(0.3)))

    # Adam's moments and step counts.
    assert ck.optimizer_state is not None
    ref_opt = trainer.optimizer.state_dict()["state"]
    assert ck.optimizer_state["state"].keys() == ref_opt.keys()
    assert len(ref_opt) == len(list(ck.model.parameters())) > 0
    for i, st in ref_opt.items():
        got = ck.optimizer_state["state"][i]
        assert float(got["step"]) == float(st["step"]) == 8.0
        assert torch.equal(got["exp_avg"], st["exp_avg"])
        assert torch.equal(got["exp_avg_sq"], st["exp_avg_sq"])

    # Continue both for one more epoch (4 steps). The reference is the original model and optimizer
    # continuing from memory; the resumed one comes from the file. The trainer seeds batch order and
    # ε from config.seed + epoch, so both get epoch/step from the run record.
    more = dataclasses.replace(trainer.config, epochs=1)
    reference = Trainer(
        trainer.model,
        tiny_data,
        more,
        epoch=trainer.epoch,
        step=trainer.step,
        history=trainer.history,
        optimizer_state=trainer.optimizer.state_dict(),
    )
    resumed = Trainer(
        ck.model,
        tiny_data,
        more,
        epoch=ck.run.epoch,
        step=ck.run.step,
        history=ck.run.history,
        optimizer_state=ck.optimizer_state,
    )
    fresh_optim = Trainer(copy.deepcopy(ck.model), tiny_data, more, epoch=ck.run.epoch, step=ck.run.step)
    for t in (reference, resumed, fresh_optim):
        list(t.run())
    assert resumed.step == reference.step == 12 and resumed.epoch == reference.epoch == 3
    for k, v in reference.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    timing = ("seconds", "images_per_s")
    assert [{k: v for k, v in h.to_dict().items() if k not in timing} for h in resumed.history] == [
        {k: v for k, v in h.to_dict().items() if k not in timing} for h in reference.history
    ]
    # Sensitivity check: without the saved moments the same continuation ends elsewhere.
    assert any(
        not torch.equal(v, fresh_optim.model.state_dict()[k]) for k, v in reference.model.state_dict().items()
    )


def test_checkpoint_without_optimizer_has_no_optimizer_state(tmp_path, tiny_config):
    model = build_model(tiny_config, seed=5)
    run = RunInfo(dataset="digits", class_names=list("abc"), step=0, epoch=0)
    ck = load_checkpoint(save_checkpoint(tmp_path / "plain.safetensors", model, run))
    assert ck.optimizer_state is None
    assert ck.metrics == {}
    assert ck.run.class_names == ["a", "b", "c"] and ck.run.train == TrainConfig()
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck.model.state_dict()[k])


def test_save_creates_missing_folders_and_overwrites(tmp_path, tiny_config):
    path = tmp_path / "a" / "b" / "m.safetensors"
    save_checkpoint(path, build_model(tiny_config, seed=1), RunInfo())
    second = build_model(tiny_config, seed=2)
    save_checkpoint(path, second, RunInfo(step=3))
    ck = load_checkpoint(path)
    assert ck.run.step == 3
    assert torch.equal(ck.model.encoder[0].weight, second.encoder[0].weight)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]


# ----------------------------------------------------------------------------- pickles are refused


def _pickle_files(folder: pathlib.Path, sentinel: pathlib.Path) -> dict[str, pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    with open(folder / "x.pt", "wb") as f:
        pickle.dump({"state_dict": _Payload(sentinel)}, f)
    files["pickle.dump .pt"] = folder / "x.pt"
    renamed = folder / "x.safetensors"
    renamed.write_bytes((folder / "x.pt").read_bytes())
    files["pickle renamed .safetensors"] = renamed
    torch.save({"weights": torch.zeros(2), "evil": _Payload(sentinel)}, folder / "zip.pt")
    files["torch.save zip"] = folder / "zip.pt"
    torch.save({"evil": _Payload(sentinel)}, folder / "legacy.pth", _use_new_zipfile_serialization=False)
    files["torch.save legacy"] = folder / "legacy.pth"
    return files


def test_payload_really_runs_code_when_unpickled(tmp_path):
    """Positive control: the files used below would create the sentinel if anything unpickled them."""
    files = _pickle_files(tmp_path / "ctl", tmp_path / "control")
    with open(files["pickle.dump .pt"], "rb") as f:
        pickle.load(f)
    assert (tmp_path / "control").exists()
    (tmp_path / "control").unlink()
    torch.load(files["torch.save zip"], weights_only=False)
    assert (tmp_path / "control").exists()


@pytest.mark.parametrize(
    "kind", ["pickle.dump .pt", "pickle renamed .safetensors", "torch.save zip", "torch.save legacy"]
)
def test_pickle_files_are_refused_without_unpickling(kind, tmp_path):
    sentinel = tmp_path / "pwned"
    path = _pickle_files(tmp_path / "files", sentinel)[kind]
    with pytest.raises(ValueError, match="pickle") as info:
        load_checkpoint(path)
    assert "safetensors" in str(info.value)
    assert not sentinel.exists()


def test_header_length_with_low_byte_0x80_loads(tmp_path, tiny_config):
    """safetensors pads its header to 8 bytes, so a header length is 128 mod 256 in 1 of 32 files; the
    first byte of such a file is 0x80, the same as a pickle's. It is still a valid checkpoint."""
    model = build_model(tiny_config, seed=4)
    path = tmp_path / "m.safetensors"
    for pad in range(300):
        save_checkpoint(path, model, RunInfo(dataset="npz:" + "x" * pad))
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header length of 128 mod 256")
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert n % 256 == 128 and path.read_bytes()[8:9] == b"{"
    ck = load_checkpoint(path)  # a pickle starts with 0x80 too: the check must not confuse them
    assert ck.run.dataset == "npz:" + "x" * pad
    assert torch.equal(ck.model.encoder[0].weight, model.encoder[0].weight)


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_protocol_pickles_are_refused_too(protocol, tmp_path):
    # Protocols 0/1 have no \x80 marker; the file must still be refused, not unpickled.
    sentinel = tmp_path / "pwned"
    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps(_Payload(sentinel), protocol=protocol))
    with pytest.raises(ValueError, match="pickles are refused"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_package_never_unpickles():
    forbidden = re.compile(
        r"torch\.load\s*\(|pickle\.loads?\s*\(|allow_pickle\s*=\s*True"
        r"|weights_only\s*=\s*False|\bUnpickler\b|import\s+dill|\bjoblib\.load"
    )
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) >= 10  # the real package, not an empty folder
    offenders = [
        f"{p.relative_to(PACKAGE_DIR)}:{i}: {line.strip()}"
        for p in sources
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if forbidden.search(line) or ("np.load(" in line and "allow_pickle=False" not in line)
    ]
    assert offenders == []


# ----------------------------------------------------------------------------- malformed files


def _mutate_tensors(fn):
    def build(good: pathlib.Path, out: pathlib.Path) -> None:
        tensors, meta = _split(good)
        fn(tensors)
        out.write_bytes(st_save(tensors, metadata=meta))

    return build


def _mutate_meta(fn):
    def build(good: pathlib.Path, out: pathlib.Path) -> None:
        tensors, meta = _split(good)
        fn(meta)
        out.write_bytes(st_save(tensors, metadata=meta))

    return build


def _mutate_model_config(**changes):
    def fn(meta):
        cfg = json.loads(meta["model_config"])
        cfg.update(changes)
        meta["model_config"] = json.dumps(cfg)

    return _mutate_meta(fn)


def _set(key, value):
    def fn(tensors):
        tensors[key] = value

    return fn


def _poke(key, value):
    def fn(tensors):
        t = tensors[key].clone()
        t.view(-1)[3] = value
        tensors[key] = t

    return fn


def _drop(key):
    return lambda tensors: tensors.pop(key)


def _retype(key, dtype):
    def fn(tensors):
        tensors[key] = tensors[key].to(dtype)

    return fn


def _raw(data: bytes):
    def build(good, out):
        out.write_bytes(data)

    return build


def _truncated(good, out):
    data = good.read_bytes()
    out.write_bytes(data[: len(data) - 100])


def _other_arch(good, out):
    """A valid conv checkpoint's tensors under the MLP metadata of the good file."""
    _, meta = _split(good)
    cfg = ModelConfig.from_dict(json.loads(meta["model_config"]))
    conv = build_model(dataclasses.replace(cfg, arch="conv"))
    save_checkpoint(out.with_name("conv.safetensors"), conv, RunInfo())
    tensors, _ = _split(out.with_name("conv.safetensors"))
    out.write_bytes(st_save(tensors, metadata=meta))


def _other_latent(good, out):
    """Same tensor names, different sizes: a latent_dim 5 model under latent_dim 3 metadata."""
    _, meta = _split(good)
    cfg = ModelConfig.from_dict(json.loads(meta["model_config"]))
    other = build_model(dataclasses.replace(cfg, latent_dim=5))
    save_checkpoint(out.with_name("z5.safetensors"), other, RunInfo())
    tensors, _ = _split(out.with_name("z5.safetensors"))
    out.write_bytes(st_save(tensors, metadata=meta))


def _plain_safetensors(good, out):
    out.write_bytes(st_save({"weight": torch.zeros(3, 3)}))


def _step_count(value):
    def fn(meta):
        steps = json.loads(meta["optim_steps"])
        steps["encoder.0.weight"] = value
        meta["optim_steps"] = json.dumps(steps)

    return _mutate_meta(fn)


MALFORMED = {
    "missing key": (_mutate_tensors(_drop("decoder.2.bias")), r"does not match .*missing decoder\.2\.bias"),
    "extra key": (_mutate_tensors(_set("extra.weight", torch.zeros(2))), r"unexpected extra\.weight"),
    "wrong shape": (
        _mutate_tensors(_set("encoder.0.weight", torch.zeros(5, 5))),
        r"encoder\.0\.weight has shape \[5, 5\], expected \[16, 64\]",
    ),
    "wrong optimizer shape": (
        _mutate_tensors(_set("optim.encoder.0.bias.exp_avg", torch.zeros(3))),
        r"optim\.encoder\.0\.bias\.exp_avg has shape \[3\]",
    ),
    "F64": (
        _mutate_tensors(_retype("encoder.0.weight", torch.float64)),
        r"tensor encoder\.0\.weight must be float32 \(F32\), got 'F64'",
    ),
    "F16": (_mutate_tensors(_retype("decoder.0.bias", torch.float16)), r"must be float32 \(F32\), got 'F16'"),
    "I64": (_mutate_tensors(_retype("decoder.2.weight", torch.int64)), r"must be float32 \(F32\), got 'I64'"),
    "NaN weight": (
        _mutate_tensors(_poke("encoder.0.weight", float("nan"))),
        r"encoder\.0\.weight contains NaN",
    ),
    "+Inf weight": (_mutate_tensors(_poke("decoder.2.bias", float("inf"))), r"NaN or infinite"),
    "-Inf buffer": (_mutate_tensors(_poke("x_logvar", float("-inf"))), r"x_logvar contains NaN or infinite"),
    "NaN optimizer moment": (
        _mutate_tensors(_poke("optim.decoder.0.weight.exp_avg_sq", float("nan"))),
        r"optim\.decoder\.0\.weight\.exp_avg_sq contains NaN",
    ),
    "header longer than file": (_raw(struct.pack("<Q", 1 << 40) + b"{}"), r"corrupt header length"),
    "header one byte too long": (_raw(struct.pack("<Q", 3) + b"{}"), r"corrupt header length"),
    "non-JSON header": (_raw(_raw_file(b"this is not json")), r"unreadable header"),
    "non-UTF-8 header": (_raw(_raw_file(b'{"\xff\xfe": 1}')), r"unreadable header"),
    "header not an object": (_raw(_raw_file(b"[1, 2, 3]")), r"header is not an object"),
    "metadata not strings": (_raw(_raw_file(b'{"__metadata__": {"format": 1}}')), r"malformed metadata"),
    "plain safetensors": (_plain_safetensors, r"not a VAE Explorer checkpoint"),
    "future format version": (_mutate_meta(lambda m: m.update(format_version="2")), r"format version '2'"),
    "no model_config": (_mutate_meta(lambda m: m.pop("model_config")), r"no 'model_config' metadata"),
    "model_config not JSON": (
        _mutate_meta(lambda m: m.update(model_config="{oops")),
        r"unreadable 'model_config' metadata",
    ),
    "model_config not an object": (
        _mutate_meta(lambda m: m.update(model_config="[3]")),
        r"invalid metadata: ModelConfig must be a JSON object",
    ),
    "model_config unknown field": (_mutate_model_config(layers=99), r"unknown fields: layers"),
    "latent_dim 1e9": (_mutate_model_config(latent_dim=1e9), r"invalid metadata: latent_dim must be between"),
    "latent_dim '1e9'": (_mutate_model_config(latent_dim="1e9"), r"latent_dim must be a whole number"),
    "latent_dim -1": (_mutate_model_config(latent_dim=-1), r"invalid metadata: latent_dim must be between"),
    "hidden_dim 1e12": (_mutate_model_config(hidden_dim=10**12), r"hidden_dim must be between"),
    "huge image": (_mutate_model_config(input_shape=[1, 100000, 100000]), r"image height must be between"),
    "run not an object": (_mutate_meta(lambda m: m.update(run="7")), r"run metadata is not an object"),
    "bad train config": (
        _mutate_meta(lambda m: m.update(run=json.dumps({"train": {"epochs": 0}}))),
        r"invalid metadata: epochs must be between",
    ),
    "bad optimizer step": (_step_count(-1), r"invalid optimizer step count for encoder\.0\.weight"),
    "string optimizer step": (_step_count("8"), r"invalid optimizer step count"),
    "no optim_steps": (_mutate_meta(lambda m: m.pop("optim_steps")), r"no 'optim_steps' metadata"),
    "other architecture": (
        _other_arch,
        r"does not match the model its config describes \(missing .*unexpected",
    ),
    "other latent size": (_other_latent, r"tensor \S+ has shape \[\d+(, \d+)?\], expected"),
    "truncated data": (_truncated, r"not a valid \.safetensors file"),
    "zero bytes": (_raw(b""), r"too short"),
    "five bytes": (_raw(b"\x01\x00\x00\x00\x00"), r"too short"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_checkpoint_is_a_clear_value_error(case, saved, tmp_path):
    good, _ = saved
    build, pattern = MALFORMED[case]
    bad = tmp_path / "bad.safetensors"
    build(good, bad)
    with pytest.raises(ValueError, match=pattern):
        load_checkpoint(bad)
    load_checkpoint(good)  # the untouched original still loads: the cases differ from it only as named


def test_missing_file_and_folder_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        load_checkpoint(folder)


def _set_run_step(header: dict, value: str) -> None:
    meta = header["__metadata__"]
    meta["run"] = meta["run"].replace('"step": 4', f'"step": {value}')


# Crafted headers that once escaped as AttributeError/TypeError/OverflowError (a CLI traceback).
CRAFTED = {
    "tensor entry not an object": lambda h: h.update({"decoder.2.bias": "junk"}),
    "tensor shape not a list": lambda h: h["decoder.2.bias"].update(shape=5),
    "run step is Infinity": lambda h: _set_run_step(h, "1e999"),
    "history not a list": lambda h: h["__metadata__"].update(
        run=h["__metadata__"]["run"].replace('"history": []', '"history": "abc"')
    ),
    "history record without fields": lambda h: h["__metadata__"].update(
        run=h["__metadata__"]["run"].replace('"history": []', '"history": [{}]')
    ),
    "history record with a string loss": lambda h: h["__metadata__"].update(
        run=h["__metadata__"]["run"].replace('"history": []', '"history": [{"test_loss": "x", "step": 1}]')
    ),
}


@pytest.mark.parametrize("case", list(CRAFTED), ids=list(CRAFTED))
def test_crafted_header_raises_value_error(case, saved, tmp_path):
    good, _ = saved
    edit = CRAFTED[case]
    data = good.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    assert '"step": 4' in header["__metadata__"]["run"]
    edit(header)
    raw = json.dumps(header).encode()
    bad = tmp_path / "crafted.safetensors"
    bad.write_bytes(_raw_file(raw, data[8 + n :]))
    with pytest.raises(ValueError, match=r"crafted\.safetensors"):
        load_checkpoint(bad)


# ----------------------------------------------------------------------------- atomic saves


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_leaves_the_old_file_and_no_temporaries(failing, tmp_path, monkeypatch, tiny_config):
    path = tmp_path / "m.safetensors"
    old_model = build_model(tiny_config, seed=1)
    save_checkpoint(path, old_model, RunInfo(step=1))
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_mod.os, failing, disk_full)
    with pytest.raises(ValueError, match=r"could not save .*No space left on device.*unchanged"):
        save_checkpoint(path, build_model(tiny_config, seed=2), RunInfo(step=2))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    ck = load_checkpoint(path)
    assert ck.run.step == 1
    assert torch.equal(ck.model.encoder[0].weight, old_model.encoder[0].weight)


def test_save_into_unwritable_places_is_a_value_error(tmp_path, tiny_config):
    model = build_model(tiny_config)
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(ValueError, match="could not save"):
        save_checkpoint(blocker / "m.safetensors", model, RunInfo())
    assert blocker.read_text() == "a file, not a folder"
    existing_dir = tmp_path / "taken.safetensors"
    existing_dir.mkdir()
    with pytest.raises(ValueError, match="could not save"):
        save_checkpoint(existing_dir, model, RunInfo())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "taken.safetensors"]
    assert list(existing_dir.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions"
)
def test_save_into_read_only_folder_is_a_value_error(tmp_path, tiny_config):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="could not save"):
            save_checkpoint(folder / "m.safetensors", build_model(tiny_config), RunInfo())
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


# ----------------------------------------------------------------------------- shipped models


def test_shipped_checkpoints_exist_and_load():
    shipped = shipped_checkpoints()
    assert isinstance(shipped, dict)
    for stem, path in shipped.items():
        assert path.suffix == ".safetensors" and path.stem == stem and path.is_file()
        ck = load_checkpoint(path)
        assert ck.run.dataset and ck.model.config.input_dim > 0


def test_shipped_checkpoints_lists_only_safetensors(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setattr(ckpt_mod, "SHIPPED_DIR", tmp_path / "absent")
    assert shipped_checkpoints() == {}
    monkeypatch.setattr(ckpt_mod, "SHIPPED_DIR", tmp_path)
    for stem in ("b-model", "a-model"):
        save_checkpoint(tmp_path / f"{stem}.safetensors", build_model(tiny_config), RunInfo(dataset="digits"))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "old.pt").write_bytes(b"\x80\x04.")
    shipped = shipped_checkpoints()
    assert list(shipped) == ["a-model", "b-model"]
    assert shipped["a-model"] == tmp_path / "a-model.safetensors"
    assert all(load_checkpoint(p).run.dataset == "digits" for p in shipped.values())


@pytest.mark.parametrize(
    "session",
    [
        {"nested": {"a": 1}},
        {"list": [1, 2]},
        {"nan": float("nan")},
        {"text": "x" * 10_000},
        {f"k{i}": i for i in range(100)},
        {"": 1},
        {"huge": 2**60},
        "not an object",
    ],
)
def test_a_session_record_is_small_flat_and_finite(session, tmp_path, tiny_config):
    model = build_model(tiny_config)
    with pytest.raises(ValueError, match=r"session (setting|record)"):
        save_checkpoint(tmp_path / "s.safetensors", model, RunInfo(), session=session)
    # The same record written into a file by hand is refused on loading.
    save_checkpoint(tmp_path / "ok.safetensors", model, RunInfo(), session={"lecture": True})
    tensors, meta = _split(tmp_path / "ok.safetensors")
    meta["session"] = json.dumps(session)
    (tmp_path / "bad.safetensors").write_bytes(st_save(tensors, metadata=meta))
    with pytest.raises(ValueError, match="session"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_a_session_record_round_trips(tmp_path, tiny_config):
    session = {"lecture": True, "epochs": 7, "beta": 2.5, "kl_schedule": "linear", "label": None}
    path = save_checkpoint(tmp_path / "s.safetensors", build_model(tiny_config), RunInfo(), session=session)
    assert load_checkpoint(path).session == session
    assert (
        load_checkpoint(
            save_checkpoint(tmp_path / "n.safetensors", build_model(tiny_config), RunInfo())
        ).session
        == {}
    )


# ----------------------------------------------------------------------------- files saved by older code

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("name", ["v1-mlp-conditional", "v1-hierarchical"])
def test_files_saved_before_the_typed_records_still_load(name, tmp_path):
    """Saved by the code of 2026-12-02 (history as plain dicts): the records come back typed, with
    every value the file holds and the figures measured since (the information split) unknown,
    and the file saves again to the same metadata plus those unknowns."""
    from vae_explorer.checkpoint import read_header
    from vae_explorer.records import EpochRecord

    added = ("mutual_info", "marginal_kl")  # measured since the file was saved: NaN when loaded

    def without_added(records: list[dict]) -> list[dict]:
        assert all(math.isnan(r[k]) for r in records for k in added)
        return [{k: v for k, v in r.items() if k not in added} for r in records]

    path = FIXTURES / f"{name}.safetensors"
    _, meta = read_header(path)
    raw = json.loads(meta["run"])
    ck = load_checkpoint(path)
    assert all(isinstance(r, EpochRecord) for r in ck.run.history) and len(ck.run.history) == 2
    assert without_added([r.to_dict() for r in ck.run.history]) == raw["history"]
    assert (ck.run.epoch, ck.run.step, ck.run.dataset) == (raw["epoch"], raw["step"], "digits")
    assert ck.session == {"dataset": "digits", "beta": 1.0, "lecture": True}
    assert ck.optimizer_state is not None and ck.metrics == raw["history"][-1]
    again = save_checkpoint(tmp_path / "again.safetensors", ck.model, ck.run, metrics=ck.metrics)
    saved = json.loads(read_header(again)[1]["run"])
    # TrainConfig fields added since (aggressive training) come back at their defaults.
    train = {**raw["train"], "encoder_steps": 0, "aggressive_epochs": 1.0}
    assert {**saved, "history": without_added(saved["history"])} == {**raw, "train": train}
