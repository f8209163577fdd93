"""Training in a worker process against training in a thread of the server, side by side.

Runs bench_load.py's training phase (50 sessions exploring while one session trains on
Fashion-MNIST) against the real app, alternately with ``VAE_EXPLORER_TRAIN_WORKER=1`` (the
app's default: the training in a process of its own, at a lower CPU priority) and ``=0`` (in a
thread of the server's process), ``--rounds`` times each, optionally with ``--busy`` competing
CPU-bound processes on the machine. Prints, per variant, the median over rounds of a map click's
(/decode_point) p50 and p95 while training, the calls served per second and the training's own
speed (images per second), and the ratios worker ÷ thread.

    PYTHONPATH=. python bench/bench_worker.py [--rounds 2] [--busy 0] [--clients 50] [--nice 10]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

VARIANTS = {"worker": "1", "thread": "0"}


def _images_per_s(report: dict) -> float:
    status = report["trainings"][0]["status"] if report["trainings"] else ""
    m = re.search(r"([\d,]+) images/s", status)
    return float(m.group(1).replace(",", "")) if m else float("nan")


def _one(variant: str, clients: int, nice: int) -> dict:
    settings = bench_load.Settings(
        clients=clients,
        trainers=1,
        phases=("training",),
        expiry=False,
        verify=False,
        server_env=(f"VAE_EXPLORER_TRAIN_WORKER={VARIANTS[variant]}", f"VAE_EXPLORER_TRAIN_NICE={nice}"),
    )
    r = bench_load.run(settings, log=lambda *a: None)
    click = r["latency"]["/decode_point training"]
    return {
        "p50": click["p50_ms"],
        "p95": click["p95_ms"],
        "calls_per_s": r["calls_per_second"]["training"],
        "images_per_s": _images_per_s(r),
        "errors": r["errors"]["count"],
        "server_rss_mb": r["memory_mb"]["server_hwm"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--busy", type=int, default=0, help="competing CPU-bound processes")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--nice", type=int, default=10, help="VAE_EXPLORER_TRAIN_NICE of the worker")
    a = p.parse_args(argv)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    try:
        for i in range(a.rounds):
            for v in VARIANTS:
                res = _one(v, a.clients, a.nice)
                results[v].append(res)
                print(
                    f"round {i + 1} {v:6s} " + "  ".join(f"{k} {x:,.1f}" for k, x in res.items()), flush=True
                )
    finally:
        for h in hogs:
            h.kill()
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in results.items()}
    setup = f"1 training (Fashion-MNIST), {a.busy} competing processes, worker at nice {a.nice}"
    print(f"\n{a.clients} sessions exploring, {setup}")
    print(f"{'median over ' + str(a.rounds) + ' rounds':28s} {'worker':>10s} {'thread':>10s} {'ratio':>7s}")
    for k, label in [
        ("p50", "click p50 ms"),
        ("p95", "click p95 ms"),
        ("calls_per_s", "calls served per s"),
        ("images_per_s", "training images per s"),
        ("server_rss_mb", "server's own RSS MB"),
    ]:
        w, t = med["worker"][k], med["thread"][k]
        print(f"{label:28s} {w:10,.1f} {t:10,.1f} {w / t if t else float('nan'):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
