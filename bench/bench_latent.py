"""Server-side times of the exploration tabs' calls (the handler: core call + image), p50/p95.

Decode at a click, one interpolation frame, a 10-frame strip, a 64-sample grid on the shipped
digits model; PCA of 10,000 points and t-SNE of 2,000 and 5,000 points of 20-D means (Fashion-MNIST's test
set through a 20-D model when installed, else Gaussian means). Targets on 2 cores: decode-type
p95 <= 30 ms, PCA <= 0.3 s, t-SNE <= 10 s.

    python bench/bench_latent.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig
from vae_explorer.data import availability, load_dataset
from vae_explorer.device import configure_threads
from vae_explorer.evaluate import encode_all
from vae_explorer.latent import project
from vae_explorer.session import Workspace
from vae_explorer.ui import generate_tab, interpolate_tab, latent_tab


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def line(name: str, secs: list[float], target: str) -> str:
    ms = sorted(s * 1000 for s in secs)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"  {name:28s} p50 {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms   ({target})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    configure_threads()
    ws = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    latent_tab.on_show(ws, "identity", 2000)
    rng = np.random.default_rng(0)
    r = args.repeats
    print(f"server-side handler times, shipped digits-2d model, {r} calls each, torch {torch.__version__}")
    print(
        line(
            "decode at a click",
            timed(
                lambda: latent_tab.on_decode_point(ws, None, *rng.normal(size=2).tolist(), "identity", 2000),
                r,
            ),
            "target p95 <= 30 ms",
        )
    )
    ends = ("test images", "3", 0, "7", 0)
    print(
        line(
            "one interpolation frame",
            timed(
                lambda: interpolate_tab.on_frame(ws, None, *ends, "slerp", "hold A's", float(rng.uniform())),
                r,
            ),
            "target p95 <= 30 ms",
        )
    )
    print(
        line(
            "a 10-frame strip (+ frame)",
            timed(lambda: interpolate_tab.on_strip(ws, None, *ends, "slerp", "hold A's", 10, 0.5), r),
            "target p95 <= 30 ms",
        )
    )
    print(
        line(
            "a 64-sample grid",
            timed(lambda: generate_tab.on_sample(ws, 64, 1.0, int(rng.integers(1000)), "all"), r),
            "target p95 <= 30 ms",
        )
    )

    if availability("fashion-mnist")[0]:
        data = load_dataset("fashion-mnist", download=False)
        model = build_model(ModelConfig(input_shape=data.image_shape, latent_dim=20, hidden_dim=400))
        mu = encode_all(model, data.x_test[:10_000]).mean.numpy()
        source = "Fashion-MNIST test set, 20-D (untrained model)"
    else:
        mu = rng.normal(size=(10_000, 20)).astype(np.float32)
        source = "Gaussian 20-D means"
    print(f"projections of {source}")
    print(line("PCA of 10,000 points", timed(lambda: project(mu, "pca"), 10), "target <= 300 ms"))
    print(line("t-SNE of 2,000 points", timed(lambda: project(mu[:2000], "tsne"), 2), "target <= 10,000 ms"))
    tsne_vs_sklearn(mu[:5000])


def tsne_vs_sklearn(mu: np.ndarray) -> None:
    """The map's t-SNE of 5,000 points against scikit-learn's defaults: seconds and
    trustworthiness (how well each keeps every point's 10 nearest neighbours), side by side."""
    from sklearn.manifold import TSNE, trustworthiness

    t0 = time.perf_counter()
    ours = project(mu, "tsne").coords
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = TSNE(2, perplexity=30.0, init="pca", random_state=0).fit_transform(mu)
    t_theirs = time.perf_counter() - t0
    tw_ours, tw_theirs = (trustworthiness(mu, c, n_neighbors=10) for c in (ours, theirs))
    print(
        f"t-SNE of {len(mu):,} points: {t_ours:.1f} s (trustworthiness {tw_ours:.4f}) against "
        f"scikit-learn's defaults {t_theirs:.1f} s ({tw_theirs:.4f}); ratio {t_ours / t_theirs:.2f}, "
        f"goal <= 10 s and trustworthiness within 0.01"
    )


if __name__ == "__main__":
    main()
