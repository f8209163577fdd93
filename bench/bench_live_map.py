"""What the Train tab's live latent map costs training: the same run through the tab's streaming
loop (``train_view.stream``) with the map on and off, interleaved, plus the time of one map
refresh. Goal: at most 10% slower with the map on.

    python bench/bench_live_map.py [--dataset digits] [--epochs 60] [--repeats 3] [--latent 2]

The map is redrawn with the images (after an epoch, at most every IMAGES_EVERY seconds), from a
fixed subset of LIVE_MAP_POINTS test images, so its cost per run is bounded by the run's length.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from vae_explorer.config import TrainConfig
from vae_explorer.device import configure_threads
from vae_explorer.session import Workspace
from vae_explorer.ui import train_view


def one_run(ws: Workspace, args, live: bool) -> float:
    train_view.LIVE_MAP_POINTS = 500 if live else 0
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=0)
    ws.new_model(args.dataset, tcfg, latent_dim=args.latent, hidden_dim=args.hidden)
    t0 = time.perf_counter()
    for _ in train_view.stream(ws, tcfg):
        pass
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latent", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    configure_threads()
    ws = Workspace.from_shipped("digits-2d")
    one_run(ws, argparse.Namespace(**{**vars(args), "epochs": 1}), True)  # warm-up: data, threads
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.repeats):
        for live in (True, False) if i % 2 == 0 else (False, True):  # alternate the order
            times[live].append(one_run(ws, args, live))
    train_view.LIVE_MAP_POINTS = 500
    refresh = []
    for _ in range(20):
        ws.version += 1  # a new model version, as after a training step: nothing cached
        t0 = time.perf_counter()
        train_view._live_map(ws)
        refresh.append(time.perf_counter() - t0)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"{args.dataset}, {args.epochs} epochs, latent {args.latent}, {args.repeats} runs each")
    print(f"  map off  median {off:6.2f} s   runs {', '.join(f'{t:.2f}' for t in times[False])}")
    print(f"  map on   median {on:6.2f} s   runs {', '.join(f'{t:.2f}' for t in times[True])}")
    print(f"  ratio on / off: {on / off:.3f}   (goal ≤ 1.10)")
    med, worst = 1e3 * statistics.median(refresh), 1e3 * max(refresh)
    print(f"  one map refresh: median {med:.1f} ms, max {worst:.1f} ms")


if __name__ == "__main__":
    main()
