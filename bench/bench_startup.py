"""Cold start: seconds from `python app.py` to the first page served, side by side with a bare
`python -c "import torch, gradio"` (the floor any Gradio app on PyTorch pays), interleaved run by
run so that the machine's drift hits both alike. Goal: app ÷ bare imports <= 1.3.

python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start() -> float:
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("app.py exited before serving a page")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    r.read()
                return time.perf_counter() - t0
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def bare_imports() -> float:
    t0 = time.perf_counter()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}  # as for the app
    subprocess.run([sys.executable, "-c", "import torch, gradio"], check=True, cwd=ROOT, env=env)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    app, bare = [], []
    for _ in range(args.runs):
        bare.append(bare_imports())
        app.append(one_start())
    a, b = statistics.median(app), statistics.median(bare)
    print(f"python app.py -> first page: median {a:.2f} s, runs {[round(r, 2) for r in app]}")
    print(f"import torch, gradio:        median {b:.2f} s, runs {[round(r, 2) for r in bare]}")
    print(f"ratio app / bare imports: {a / b:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
