"""The app's cost over the core, measured side by side in one run.

1. The same training (same data, model, epochs, seed) through the app's streaming /train endpoint
   (driven by gradio_client, with its live plots and images) and through the core Trainer
   directly (with its per-epoch evaluation): wall time and ratio, for digits and Fashion-MNIST.
2. While one session trains, a second session calls /decode in a loop: round-trip latency as a
   client sees it (p50/p95/max), against the same calls with no training running.

    python bench/bench_app.py [--epochs 2] [--decodes 100]
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import availability, load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.trainer import Trainer
from vae_explorer.ui import build_app, generate_tab, launch_kwargs

SERVER_DECODE: list[float] = []  # seconds inside the /decode handler (decode + image grid)
_real_decode = generate_tab.on_decode


@functools.wraps(_real_decode)  # keeps the parameter names the API is built from
def _timed_decode(*args):
    t0 = time.perf_counter()
    try:
        return _real_decode(*args)
    finally:
        SERVER_DECODE.append(time.perf_counter() - t0)


generate_tab.on_decode = _timed_decode  # before build_app() wires the handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(dataset: str, epochs: int) -> dict:
    big = dataset != "digits"
    return {
        "dataset": dataset,
        "arch": "mlp",
        "latent_dim": 20 if big else 2,
        "hidden_dim": 400 if big else 256,
        "likelihood": "bernoulli",
        "binarize": False,
        "conditional": False,
        "beta": 1.0,
        "kl_schedule": "constant",
        "warmup_epochs": 10,
        "free_bits": 0.0,
        "lr": 1e-3,
        "batch_size": 128 if big else 64,
        "epochs": epochs,
        "grad_clip": 1.0,
        "seed": 0,
    }


def core_seconds(s: dict) -> float:
    data = load_dataset(s["dataset"], download=False)
    cfg = ModelConfig(
        input_shape=data.image_shape,
        latent_dim=s["latent_dim"],
        hidden_dim=s["hidden_dim"],
        num_classes=data.num_classes,
    )
    trainer = Trainer(
        build_model(cfg, s["seed"]),
        data,
        TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], seed=s["seed"]),
    )
    t0 = time.perf_counter()
    for _ in trainer.run():
        pass
    return time.perf_counter() - t0


def app_seconds(client: Client, s: dict) -> tuple[float, int]:
    t0 = time.perf_counter()
    job = client.submit(**s, api_name="/train")
    job.result(timeout=3600)
    return time.perf_counter() - t0, len(job.outputs())


def decode_latencies(client: Client, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        client.predict(z_text=f"[{(i % 7) / 3 - 1:.3f}, 0.5]", label=None, api_name="/decode")
        out.append(time.perf_counter() - t0)
    return out


def _summary(ms: list[float]) -> str:
    ms = sorted(x * 1000 for x in ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   max {ms[-1]:6.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--decodes", type=int, default=100)
    args = p.parse_args()
    configure_threads()
    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=64)
    kw = {k: v for k, v in launch_kwargs().items() if k not in ("server_port", "server_name")}
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True, **kw)
    try:
        trainer_client, decoder_client = Client(url, verbose=False), Client(url, verbose=False)
        sets = ["digits"] + (["fashion-mnist"] if availability("fashion-mnist")[0] else [])
        print("training through the app (/train, streamed) vs the core Trainer; fastest of two runs each")
        for name in sets:
            # Digits epochs take ~50 ms: run 30 times as many, or fixed per-request costs dominate.
            s = settings(name, args.epochs * (30 if name == "digits" else 1))
            load_dataset(name, download=False)  # both sides start with the data in memory
            app_seconds(trainer_client, {**s, "epochs": 1})  # warm-up of both paths, not counted
            core_seconds({**s, "epochs": 1})
            cores = [core_seconds(s) for _ in range(2)]
            apps = [app_seconds(trainer_client, s) for _ in range(2)]
            core, (app, updates) = min(cores), min(apps)
            print(
                f"  {name:14s} {s['epochs']:3d} epochs: core {core:6.2f} s   app {app:6.2f} s "
                f"({updates} updates)   ratio {app / core:.3f}  (goal <= 1.10)   "
                f"runs core {[round(c, 2) for c in cores]} app {[round(a, 2) for a, _ in apps]}"
            )

        decode_latencies(decoder_client, 5)  # warm up
        SERVER_DECODE.clear()
        idle = decode_latencies(decoder_client, args.decodes)
        idle_server = list(SERVER_DECODE)
        SERVER_DECODE.clear()
        s = settings(sets[-1], 50)
        job = trainer_client.submit(**s, api_name="/train")
        while len(job.outputs()) < 2:
            time.sleep(0.05)
        busy: list[float] = []
        t = threading.Thread(target=lambda: busy.extend(decode_latencies(decoder_client, args.decodes)))
        t.start()
        t.join()
        trainer_client.predict(api_name="/stop")
        job.result(timeout=600)
        busy_server = list(SERVER_DECODE)
        print(f"/decode from a second session, {args.decodes} calls each (round trip includes the client's")
        print("HTTP, queue and image download; the handler time is the decode and the PNG grid)")
        print(f"  idle, round trip      {_summary(idle)}")
        print(f"  idle, handler         {_summary(idle_server)}")
        print(f"  training, round trip  {_summary(busy)}   ({sets[-1]})")
        print(f"  training, handler     {_summary(busy_server)}")
    finally:
        demo.close()


if __name__ == "__main__":
    main()
