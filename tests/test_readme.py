"""The README's command-line example, run exactly as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_readme_command_line_example_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", readme, re.S | re.M)
    block = next(b for b in blocks if "python -m vae_explorer train" in b)
    commands = [line for line in block.splitlines() if line.startswith("python -m vae_explorer")]
    assert [c.split()[3] for c in commands] == ["train", "evaluate", "sample"]
    env = {**os.environ, "VAE_EXPLORER_DATA": str(tmp_path / "data")}
    outputs = []
    for command in commands:
        args = shlex.split(command)
        res = subprocess.run(
            [sys.executable, *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert res.returncode == 0, res.stderr[-1000:]
        outputs.append(res.stdout)
    assert "saved digits.safetensors" in outputs[0]
    nelbo = float(re.search(r"negative ELBO\s+([\d.]+)", outputs[1]).group(1))
    iwae = float(re.search(r"IWAE -log p\(x\)\s+([\d.]+)", outputs[1]).group(1))
    assert 15 < iwae <= nelbo + 0.05 < 40  # sensible nats for 8×8 digits, IWAE at most the ELBO bound
    assert Image.open(tmp_path / "grid.png").size[0] > 64
