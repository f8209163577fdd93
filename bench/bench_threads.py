"""Seconds per epoch at each CPU thread setting, on a quiet machine and beside a competing
CPU-bound process, side by side in one run: the numbers behind device.configure_threads.

Each setting runs in a fresh interpreter (OpenMP reads its wait policy once, at start): torch's
intra-op threads, its inter-op threads and OMP_WAIT_POLICY. Each trains the project's Trainer for
a warm-up epoch and then --epochs more, and reports its best training epoch (the test evaluation
after each epoch is not counted). "busy" runs the same child while another process spins on one
core, as a browser, a second session's decode or a Space's neighbour does.

    python bench/bench_threads.py [--datasets mnist-10k fashion-mnist digits] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (label, intra-op threads, inter-op threads, OMP_WAIT_POLICY or None for the library's default)
SETTINGS = [
    ("2 threads (torch's default)", 2, 2, None),
    ("2 threads, OMP passive", 2, 1, "PASSIVE"),
    ("1 thread", 1, 1, None),
    ("the app's choice", 0, 0, None),  # configure_threads, then the Trainer's ThreadTuner
]
SPIN = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def child(args: argparse.Namespace) -> None:
    import torch

    from vae_explorer.build import build_model
    from vae_explorer.config import ModelConfig, TrainConfig
    from vae_explorer.data import load_dataset
    from vae_explorer.device import configure_threads
    from vae_explorer.records import EpochRecord
    from vae_explorer.trainer import Trainer

    data = load_dataset(args.dataset, download=False)
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.interop)
    mcfg = ModelConfig(input_shape=data.image_shape, latent_dim=args.latent, hidden_dim=400)
    if not args.threads:
        configure_threads()
    tcfg = TrainConfig(epochs=args.epochs + 1, batch_size=128)
    # A fixed setting is measured as it is; the app's choice is the Trainer's own tuning.
    run = Trainer(build_model(mcfg, seed=0), data, tcfg, tune_threads=not args.threads).run()
    # EpochRecord.seconds: the epoch's training steps, the test evaluation excluded.
    epochs = [rec.seconds for rec in run if isinstance(rec, EpochRecord)]
    print(json.dumps({"best": min(epochs[1:]), "threads": torch.get_num_threads()}))  # threads at the end


def measure(dataset: str, setting: tuple, epochs: int, latent: int, busy: bool) -> dict:
    _, threads, interop, wait = setting
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_WAIT_POLICY", None)
    if wait:
        env["OMP_WAIT_POLICY"] = wait
    cmd = [sys.executable, __file__, "--child", "--dataset", dataset, "--epochs", str(epochs)]
    cmd += ["--threads", str(threads), "--interop", str(interop), "--latent", str(latent)]
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["mnist-10k", "fashion-mnist", "digits"])
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up epoch")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--repeat", type=int, default=2, help="rounds over all settings; the best of each")
    p.add_argument("--only", nargs="+", default=None, help="settings whose label contains one of these")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--interop", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    from vae_explorer.data import availability

    print(
        f"MLP 784-400-{args.latent} (digits: 64-400-{args.latent}), batch 128, best of {args.epochs} epochs"
    )
    print(
        f"{'data set':<14} {'setting':<28} {'quiet s':>8} {'busy s':>8} {'busy/quiet':>10} {'quiet/best':>10}"
    )
    for dataset in args.datasets:
        if not availability(dataset)[0]:
            print(f"{dataset:<14} not on this machine: skipped")
            continue
        chosen = [s for s in SETTINGS if not args.only or any(o in s[0] for o in args.only)]
        runs: dict[str, list] = {s[0]: [] for s in chosen}
        for _ in range(args.repeat):  # rounds: the machine's drift hits every setting alike
            for setting in chosen:
                # Quiet and busy back to back, so the machine's drift hits both alike.
                quiet = measure(dataset, setting, args.epochs, args.latent, busy=False)
                busy = measure(dataset, setting, args.epochs, args.latent, busy=True)
                runs[setting[0]].append((quiet, busy))
        rows = [
            (
                label,
                min((q for q, _ in r), key=lambda d: d["best"]),
                min((b for _, b in r), key=lambda d: d["best"]),
            )
            for label, r in runs.items()
        ]
        best = min(q["best"] for _, q, _ in rows)
        for label, quiet, busy in rows:
            if label == "the app's choice":
                label += f" ({quiet['threads']})"
            print(
                f"{dataset:<14} {label:<28} {quiet['best']:>8.3f} {busy['best']:>8.3f} "
                f"{busy['best'] / quiet['best']:>10.2f} {quiet['best'] / best:>10.2f}"
            )
    print("goal for the app's choice: busy/quiet <= 1.6 and quiet/best <= 1.05")


if __name__ == "__main__":
    main()
