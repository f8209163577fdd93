"""``torchrun --nproc-per-node 2 -m vae_explorer train …`` for real: two CPU processes joined by
gloo train one model, rank 0 alone prints and writes, and the model is the one a single process
trains with the same seed and batch size (the sharding maths is in tests/test_distributed.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
import torch

from vae_explorer import cli
from vae_explorer.checkpoint import load_checkpoint
from vae_explorer.session import Workspace

# --batch-size 718 on digits' 1,437 training images: the last batch has one image, so one of
# the two processes has no rows in it and must still take part in the step.
RUNS = {
    "ddp": [
        "--epochs", "2", "--batch-size", "718", "--free-bits", "0.3", "--binarize",
        "--latent-dim", "4", "--hidden", "64", "--seed", "5",
    ],
    # NaN within the first steps: every process must skip, roll back and stop at the same step.
    "nan": ["--epochs", "3", "--lr", "1", "--grad-clip", "0", "--likelihood", "gaussian",
            "--gaussian-std", "0.001"],
}  # fmt: skip
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _train_args(name: str, out) -> list[str]:
    return ["train", "--dataset", "digits", "--no-download", "--json", "--out", str(out), *RUNS[name]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both torchrun jobs at once (each with 2 processes of 1 thread), and while they run, the
    same two trainings in this process, as one process."""
    root = tmp_path_factory.mktemp("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", VAE_EXPLORER_DATA=str(root / "data"))
    procs, single, results = {}, {}, {}
    threads = torch.get_num_threads()
    with contextlib.ExitStack() as files:
        for name in RUNS:
            out = files.enter_context(open(root / f"{name}.out", "w"))
            err = files.enter_context(open(root / f"{name}.err", "w"))
            args = [*TORCHRUN, "-m", "vae_explorer", *_train_args(name, root / f"{name}-2.safetensors")]
            procs[name] = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=err)
        try:
            for name in RUNS:
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                    status = cli.main(_train_args(name, root / f"{name}-1.safetensors"))
                single[name] = (status, buf.getvalue())
        finally:
            torch.set_num_threads(threads)
            for p in procs.values():
                try:
                    p.wait(timeout=300)
                finally:
                    p.kill()
    for name, p in procs.items():
        results[name] = (p.returncode, (root / f"{name}.out").read_text(), (root / f"{name}.err").read_text())
    return root, results, single


def _weights_close(a, b) -> None:
    sa, sb = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=1e-4, atol=1e-5)


def test_two_processes_train_the_model_one_process_trains(runs):
    root, results, single = runs
    status, out, err = results["ddp"]
    assert status == 0, err[-3000:]
    assert "Traceback" not in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]  # rank 0 alone prints: one line per epoch
    ref = [json.loads(line) for line in single["ddp"][1].splitlines()]
    assert [r["step"] for r in lines] == [r["step"] for r in ref] == [3, 6]
    for got, want in zip(lines, ref, strict=True):
        assert got["test_loss"] == pytest.approx(want["test_loss"], rel=1e-5)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
    _weights_close(root / "ddp-1.safetensors", root / "ddp-2.safetensors")
    written = sorted(p.name for p in root.glob("*.safetensors"))  # one file per run, none per rank
    assert written == ["ddp-1.safetensors", "ddp-2.safetensors", "nan-1.safetensors", "nan-2.safetensors"]


def test_the_checkpoint_of_two_processes_loads_in_the_app(runs):
    root, _, _ = runs
    ws = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    ws.load(root / "ddp-2.safetensors")
    assert ws.run.epoch == 2 and ws.run.step == 6 and len(ws.run.history) == 2
    assert ws.model.latent_dim == 4
    images = ws.model.mean_image(ws.model.decode(torch.zeros(2, 4)))
    assert images.shape == (2, 1, 8, 8) and bool(torch.isfinite(images).all())


def test_processes_roll_back_and_stop_together_on_nan(runs):
    root, results, single = runs
    status, out, err = results["nan"]
    assert single["nan"][0] == 1  # one process: stopped
    assert status != 0 and out == ""
    assert err.count("vae-explorer: training stopped: The loss or its gradient was not finite") == 1
    ck = load_checkpoint(root / "nan-2.safetensors")
    assert all(bool(torch.isfinite(v).all()) for v in ck.model.state_dict().values())
    assert ck.run.step == load_checkpoint(root / "nan-1.safetensors").run.step
    _weights_close(root / "nan-1.safetensors", root / "nan-2.safetensors")
