"""The command line, run for real: ``python -m vae_explorer`` in subprocesses.

Each process spends a few seconds importing torch and torchvision, so one module fixture runs all
commands, a few at a time, each as soon as the model it needs is saved. Every test below checks
the outcome of one or two of those commands.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from vae_explorer.checkpoint import load_checkpoint
from vae_explorer.generate import sample_prior, save_png, to_grid

pytestmark = pytest.mark.slow  # a module fixture runs ~17 processes of a few seconds each

EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "train_recon",
    "train_kl",
    "beta",
    "test_loss",
    "test_recon",
    "test_kl",
    "active_units",
    "seconds",
    "images_per_s",
}
EVAL_KEYS = {"neg_elbo", "recon", "kl", "active_units", "n", "iwae_nll"}
TRAIN = ["train", "--dataset", "digits", "--latent-dim", "2", "--hidden", "64"]


class _Payload:
    """Unpickling this creates the sentinel file."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


def _env(root: pathlib.Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VAE_EXPLORER_DATA=str(root / "data"),
        XDG_CACHE_HOME=str(root / "cache"),
        # Several processes share two cores here; OpenMP threads that spin while waiting would
        # slow all of them down several times. This changes speed only, not results.
        OMP_WAIT_POLICY="PASSIVE",
    )
    return env


def _run_graph(
    tasks: dict[str, tuple[list[str], tuple[str, ...]]], cwd: pathlib.Path, logs: pathlib.Path, limit: int = 3
) -> dict[str, subprocess.CompletedProcess]:
    """Run ``name -> (arguments, names it waits for)`` with at most ``limit`` processes at once.
    Output goes to files (no pipe can fill up and stall a process)."""
    env = _env(cwd)
    pending, running, results = dict(tasks), {}, {}
    deadline = time.monotonic() + 600
    try:
        while pending or running:
            for name, (args, deps) in list(pending.items()):
                if len(running) < limit and all(d in results for d in deps):
                    del pending[name]
                    stem = logs / str(len(results) + len(running))
                    out, err = stem.with_suffix(".out"), stem.with_suffix(".err")
                    with open(out, "w") as fo, open(err, "w") as fe:
                        p = subprocess.Popen(
                            [sys.executable, "-m", "vae_explorer", *args],
                            cwd=cwd,
                            env=env,
                            stdout=fo,
                            stderr=fe,
                            text=True,
                        )
                    running[name] = (p, out, err)
            for name, (p, out, err) in list(running.items()):
                if p.poll() is not None:
                    del running[name]
                    results[name] = subprocess.CompletedProcess(
                        p.args, p.returncode, out.read_text(), err.read_text()
                    )
            assert time.monotonic() < deadline, f"still running: {sorted(running)}"
            time.sleep(0.02)
    finally:
        for p, _, _ in running.values():
            p.kill()
            p.wait()
    return results


def _json_lines(res: subprocess.CompletedProcess) -> list[dict]:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stdout.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]  # every line of stdout is one JSON object


# Bad command lines (no trained model needed): arguments, and the line stderr must contain.
BAD = {
    "epochs 0": (
        ["train", "--epochs", "0", "--out", "x.safetensors"],
        "Epochs must be a whole number from 1 to 100000.",
    ),
    "lr nan": (
        ["train", "--lr", "nan", "--out", "x.safetensors"],
        "Learning rate must be a number from 1e-06 to 1.",
    ),
    "epochs abc": (["train", "--epochs", "abc", "--out", "x.safetensors"], "invalid int value: 'abc'"),
    "arch foo": (["train", "--arch", "foo", "--out", "x.safetensors"], "invalid choice: 'foo'"),
    "unknown dataset": (
        ["train", "--dataset", "cifar10", "--out", "x.safetensors"],
        "unknown data set 'cifar10'",
    ),
    "evaluate missing file": (["evaluate", "missing.safetensors"], "missing.safetensors does not exist"),
    "evaluate pickle": (["evaluate", "evil.pt"], "pickle"),
    "out not safetensors": (
        ["train", "--epochs", "1", "--out", "model.pt"],
        "--out must name a .safetensors file",
    ),
    "mnist offline": (
        ["train", "--dataset", "mnist", "--no-download", "--out", "x.safetensors"],
        "downloading is off",
    ),
    "device foo": (["train", "--device", "foo", "--out", "x.safetensors"], "the device must be cpu or cuda"),
    "npz missing": (
        ["train", "--dataset", "npz:missing.npz", "--out", "x.safetensors"],
        "missing.npz does not exist",
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every command of this module, run once; dependent commands start when their model is saved."""
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "data").mkdir()  # an empty data root: nothing to find there
    with open(cwd / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": _Payload(cwd / "pwned")}, f)
    cond = [*TRAIN, "--conditional", "--epochs", "1", "--out", "c.safetensors", "--json"]
    tasks = {
        "train": ([*TRAIN, "--epochs", "3", "--out", "m.safetensors", "--json"], ()),
        "train conditional": (cond, ()),
        "train hierarchical": (
            [
                *TRAIN,
                "--arch",
                "hierarchical",
                "--bottom-latent-dim",
                "6",
                "--free-bits",
                "0.5",
                "--epochs",
                "2",
                "--out",
                "h.safetensors",
                "--json",
            ],
            (),
        ),
        "evaluate hierarchical": (["evaluate", "h.safetensors", "--iwae-k", "50"], ("train hierarchical",)),
        "evaluate": (["evaluate", "m.safetensors", "--iwae-k", "50", "--json"], ("train",)),
        "sample": (["sample", "m.safetensors", "--n", "16", "--out", "g.png"], ("train",)),
        "resume": (
            [*TRAIN, "--resume", "m.safetensors", "--epochs", "2", "--out", "r.safetensors", "--json"],
            ("train",),
        ),
        "sample conditional": (
            ["sample", "c.safetensors", "--label", "3", "--n", "8", "--out", "c3.png"],
            ("train conditional",),
        ),
        "label on unconditional": (
            ["sample", "m.safetensors", "--label", "3", "--out", "bad.png"],
            ("train",),
        ),
        **{name: (args, ()) for name, (args, _) in BAD.items()},
    }
    return cwd, _run_graph(tasks, cwd, tmp_path_factory.mktemp("logs"))


# ----------------------------------------------------------------------------- the working paths


def test_train_prints_one_json_line_per_epoch_and_saves(runs):
    cwd, results = runs
    lines = _json_lines(results["train"])
    assert len(lines) == 3
    assert results["train"].stderr == ""  # --json and no terminal: no progress bar, no "saved" line
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert [r["step"] for r in lines] == [12, 24, 36]  # 1437 images / batch 128 = 12 steps an epoch
    for r in lines:
        assert set(r) >= EPOCH_KEYS
        assert "kl_per_dim" not in r
        for k in ("train_loss", "train_recon", "test_loss", "test_recon", "seconds", "images_per_s"):
            assert math.isfinite(r[k]) and r[k] > 0, (k, r[k])
        for k in ("train_kl", "test_kl"):
            assert math.isfinite(r[k]) and r[k] >= 0, (k, r[k])
        assert r["beta"] == 1.0
        assert r["test_loss"] == pytest.approx(r["test_recon"] + r["test_kl"], rel=1e-9, abs=1e-9)
        assert isinstance(r["active_units"], int) and 0 <= r["active_units"] <= 2
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]  # it learns
    assert lines[-1]["test_loss"] < 8 * 8 * math.log(2)  # better than predicting 0.5 for every pixel

    path = cwd / "m.safetensors"
    ck = load_checkpoint(path)
    cfg = ck.model.config
    assert (cfg.latent_dim, cfg.hidden_dim, cfg.input_shape, cfg.conditional) == (2, 64, (1, 8, 8), False)
    assert (ck.run.dataset, ck.run.epoch, ck.run.step) == ("digits", 3, 36)
    assert ck.optimizer_state is not None
    for saved, printed in zip(ck.run.history, lines, strict=True):
        assert {k: saved.to_dict()[k] for k in printed} == printed
    assert ck.metrics["epoch"] == 3


def test_evaluate_reports_elbo_and_a_tighter_iwae_bound(runs):
    _cwd, results = runs
    (out,) = _json_lines(results["evaluate"])
    assert set(out) >= EVAL_KEYS
    assert out["n"] == 360
    for k in ("neg_elbo", "recon", "kl", "iwae_nll"):
        assert math.isfinite(out[k]), k
    assert out["neg_elbo"] > 0 and out["kl"] >= 0
    assert out["neg_elbo"] == pytest.approx(out["recon"] + out["kl"], rel=1e-9)
    # IWAE with K = 50 bounds -log p(x) more tightly than the ELBO (both are noisy estimates).
    assert out["iwae_nll"] <= out["neg_elbo"] + 0.5
    assert out["iwae_nll"] > 0
    # The closed-form KL does not depend on sampling: it must match the last epoch's test KL.
    last = _json_lines(runs[1]["train"])[-1]
    assert out["kl"] == pytest.approx(last["test_kl"], rel=1e-5)
    assert out["active_units"] == last["active_units"]


def test_hierarchical_model_reports_each_level(runs):
    cwd, results = runs
    lines = _json_lines(results["train hierarchical"])
    assert len(lines) == 2
    for r in lines:
        assert len(r["test_kl_levels"]) == 2  # z1, z2
        assert sum(r["test_kl_levels"]) == pytest.approx(r["test_kl"], rel=1e-6)
    ck = load_checkpoint(cwd / "h.safetensors")
    assert (ck.model.config.arch, ck.model.config.bottom_latent_dim) == ("hierarchical", 6)
    res = results["evaluate hierarchical"]
    assert res.returncode == 0, res.stderr
    assert "KL per level   z1 " in res.stdout and "IWAE -log p(x)" in res.stdout


def test_sample_writes_the_png_the_model_decodes(runs):
    cwd, results = runs
    res = results["sample"]
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "saved g.png"
    with Image.open(cwd / "g.png") as img:
        assert img.format == "PNG" and img.mode == "L"
        assert img.size == (148, 148)  # 4 × 4 grid of 8 × 8 images, 1-pixel borders, scale 4
        got = np.asarray(img).astype(int)
    model = load_checkpoint(cwd / "m.safetensors").model
    save_png(to_grid(sample_prior(model, 16, 1.0, 0), nrow=4), cwd / "expected.png", scale=4)
    with Image.open(cwd / "expected.png") as img:
        expected = np.asarray(img).astype(int)
    assert np.abs(got - expected).max() <= 1
    assert got.std() > 0  # not a blank image


def test_resume_continues_epoch_numbering(runs):
    cwd, results = runs
    lines = _json_lines(results["resume"])
    assert [r["epoch"] for r in lines] == [4, 5]
    assert [r["step"] for r in lines] == [48, 60]
    for r in lines:
        assert set(r) >= EPOCH_KEYS and math.isfinite(r["test_loss"])
    first = _json_lines(runs[1]["train"])
    assert lines[-1]["train_loss"] < first[-1]["train_loss"]  # it kept learning rather than restarting
    ck = load_checkpoint(cwd / "r.safetensors")
    assert (ck.run.epoch, ck.run.step, len(ck.run.history)) == (5, 60, 5)
    assert [h.epoch for h in ck.run.history] == [1, 2, 3, 4, 5]
    assert ck.run.train.epochs == 2


def test_conditional_model_samples_the_asked_class(runs):
    cwd, results = runs
    lines = _json_lines(runs[1]["train conditional"])
    assert [r["epoch"] for r in lines] == [1]
    model = load_checkpoint(cwd / "c.safetensors").model
    assert model.config.conditional and model.config.num_classes == 10
    res = results["sample conditional"]
    assert res.returncode == 0, res.stderr
    with Image.open(cwd / "c3.png") as img:
        assert img.format == "PNG"
        got = np.asarray(img).astype(int)
    renders = {}
    for label in (3, 4):
        save_png(to_grid(sample_prior(model, 8, 1.0, 0, label), nrow=3), cwd / f"label{label}.png", scale=4)
        with Image.open(cwd / f"label{label}.png") as img:
            renders[label] = np.asarray(img).astype(int)
    assert np.abs(got - renders[3]).max() <= 1
    assert np.abs(got - renders[4]).max() > 1  # the label changes the images


# ----------------------------------------------------------------------------- bad input


def _assert_one_line_error(res: subprocess.CompletedProcess, fragment: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), res.stderr
    assert lines[0].startswith("vae-explorer: error: ")
    assert fragment in lines[0]
    assert res.stdout == ""


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_and_status_2(case, runs):
    cwd, results = runs
    _assert_one_line_error(results[case], BAD[case][1])
    assert not (cwd / "x.safetensors").exists() and not (cwd / "model.pt").exists()
    if case == "evaluate pickle":
        assert not (cwd / "pwned").exists()
    if case == "mnist offline":
        line = results[case].stderr
        assert str(cwd / "data") in line and "train-images-idx3-ubyte" in line


def test_label_on_unconditional_model_is_one_line_and_status_2(runs):
    cwd, results = runs
    _assert_one_line_error(results["label on unconditional"], "not conditional")
    assert not (cwd / "bad.png").exists()
