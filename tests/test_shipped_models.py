"""The shipped checkpoints: the numbers their README table and metadata state are what a fresh
evaluation gives, within Monte Carlo noise.

The stated −ELBO (one sampled z per image) and IWAE bound (K samples) were estimated with one
seed; here they are estimated again per image with another seed, and the first images once more
with a third. Independent estimates of the same estimator, the spread of their per-image
differences gives the standard error of (stated − fresh); a wrong number in the table, a changed
model or a changed evaluation would be many standard errors away.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from vae_explorer.checkpoint import SHIPPED_DIR, load_checkpoint, shipped_checkpoints
from vae_explorer.data import availability, load_dataset
from vae_explorer.loss import iwae_nll, recon_nll

IWAE_MAX_IMAGES = 2000  # the IWAE part runs where the test set is this small (not Fashion-MNIST's 10,000)
BATCH = 250
SPREAD_IMAGES = 500  # images estimated twice, for the spread of the Monte Carlo error


def _table() -> dict[str, tuple[float, float | None, int | None]]:
    """checkpoints/README.md's rows: file stem → (test −ELBO, IWAE NLL or None, K or None)."""
    rows = {}
    for line in (SHIPPED_DIR / "README.md").read_text().splitlines():
        m = re.match(r"\| `([\w-]+)\.safetensors` \|(.*)", line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        elbo = float(cells[3].split()[0])
        iwae = re.match(r"([\d.]+) \(K=(\d+)\)", cells[4])
        rows[m.group(1)] = (elbo, float(iwae.group(1)), int(iwae.group(2))) if iwae else (elbo, None, None)
    return rows


@torch.no_grad()
def _per_image(model, x, y, seed: int, k: int | None) -> torch.Tensor:
    """Per-image −ELBO (k None) or IWAE estimate with K = k samples, seeded. (N,) float64."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(x), BATCH):
        xb = x[i : i + BATCH]
        yb = None if y is None else y[i : i + BATCH]
        if k is None:
            o = model(xb, yb, gen)
            value = recon_nll(xb, o.recon, model.likelihood, model.x_logvar)
            for lv in o.levels:  # none for an autoencoder: its loss is the reconstruction alone
                value = value + lv.q.kl(lv.p).sum(dim=1)
        else:
            value = iwae_nll(model, xb, yb, k, gen)
        out.append(value.double())
    return torch.cat(out)


def _within_noise(stated: float, model, x, y, k: int | None, what: str) -> None:
    a = _per_image(model, x, y, 1, k)
    # A second estimate of the first images is enough to know the per-image Monte Carlo spread.
    m = min(len(x), SPREAD_IMAGES)
    b = _per_image(model, x[:m], None if y is None else y[:m], 2, k)
    se = float((a[:m] - b).std()) / math.sqrt(len(a))  # SE of the difference of two estimates
    fresh = float(a.mean())
    # 0.005: the table's rounding to 2 decimals; 5 SE: Monte Carlo noise.
    assert abs(stated - fresh) <= 5 * se + 0.006, f"{what}: stated {stated:.3f}, fresh {fresh:.3f} ± {se:.3f}"


SHIPPED = sorted(shipped_checkpoints())


def test_the_table_lists_every_shipped_file_and_the_default_models():
    table = _table()
    assert sorted(table) == SHIPPED
    for name in ("mnist-2d", "mnist-ae-2d", "mnist-conditional", "mnist-20d", "mnist-hierarchical"):
        ck = load_checkpoint(SHIPPED_DIR / f"{name}.safetensors")
        assert name in table and ck.run.dataset == "mnist-10k"


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_stated_numbers_match_a_fresh_evaluation(name):
    ck = load_checkpoint(Path(SHIPPED_DIR) / f"{name}.safetensors")
    if not availability(ck.run.dataset)[0]:
        pytest.skip(f"{ck.run.dataset} is not on this machine")
    data = load_dataset(ck.run.dataset, download=False)
    model, m = ck.model, ck.metrics
    x, y = data.x_test, data.y_test if model.config.conditional else None
    elbo, iwae, k = _table()[name]
    # The table is the metadata, rounded.
    assert elbo == pytest.approx(m["test_neg_elbo"], abs=0.006)
    _within_noise(m["test_neg_elbo"], model, x, y, None, f"{name} −ELBO")
    if iwae is None:
        assert model.config.autoencoder and m["test_iwae_nll"] is None  # no p(x), no bound
        return
    assert iwae == pytest.approx(m["test_iwae_nll"], abs=0.006) and k == m["iwae_k"]
    assert m["test_iwae_nll"] < m["test_neg_elbo"]  # the tighter bound
    if len(x) <= IWAE_MAX_IMAGES:
        _within_noise(m["test_iwae_nll"], model, x, y, k, f"{name} IWAE (K={k})")
