"""Diagnostics of a trained VAE: active units, per-dimension KL, posterior collapse, and how far
the aggregate posterior is from the prior (the "prior holes" that make samples poor)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .records import EpochRecord

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active when Var_x(E_q[z_d]) > 0.01
COLLAPSE_KL = 0.1  # nats per image: below this the code carries (almost) no information
# Prior holes: the aggregate-posterior gap per latent dimension above which prior samples start
# to land where no data was encoded. Measured on mnist-10k after 6 epochs: β = 1: 0.20 (8-D),
# 0.34 (2-D); β = 0.05: 3.4 (8-D), 4.8 (2-D).
HOLES_GAP_PER_DIM = 1.0
# Blurry reconstructions: below this share of the inputs' edge energy (see ``sharpness``).
# Measured on mnist-10k after 6 epochs, 8-D latent: Bernoulli 0.29, Gaussian σ = 0.1: 0.30,
# σ = 1: 0.19, σ = 1.5: 0.09 (visibly a blur).
BLUR_SHARPNESS = 0.15


@dataclass
class Diagnosis:
    """What the numbers say, with the sentences a student reads."""

    active_units: int  # dimensions with Var_x(mu_d) > 0.01
    activity: list[float]  # (D,) Var_x(mu_d) per dimension
    kl_per_dim: list[float]  # (D,) mean KL per dimension, nats
    total_kl: float  # nats per image
    collapsed: bool  # posterior collapse: KL ≈ 0 or no active unit
    prior_gap: float  # KL(moment-matched aggregate posterior || N(0, I)), nats
    findings: list[str] = field(default_factory=list)


def activity(mu: torch.Tensor) -> torch.Tensor:
    """Var over the data of E_q[z_d] = mu_d, per dimension. (N, D) → (D,)."""
    if mu.shape[0] < 2:
        return torch.zeros(mu.shape[1])
    return mu.var(dim=0, unbiased=True)


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dimensions the encoder actually uses (Burda et al. 2015, §5.2)."""
    return int((activity(mu) > threshold).sum())


def aggregate_prior_gap(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """KL(N(m, S) || N(0, I)) where N(m, S) matches the first two moments of the aggregate
    posterior q(z) = mean_x q(z|x):  m = mean(mu),  S = Cov(mu) + mean(diag σ²).

        KL = ½ (tr S + mᵀm − D − log det S)

    0 when q(z) has the prior's moments; large when the codes occupy a small or shifted region,
    leaving prior mass where no data lives (the prior holes behind poor samples). Using S rather
    than Cov(mu) alone keeps a collapsed posterior (mu ≡ 0, σ ≡ 1) at a gap of 0, as it should."""
    mu = mu.double()
    n, d = mu.shape
    m = mu.mean(dim=0)
    centred = mu - m
    cov = centred.T @ centred / max(n - 1, 1) + torch.diag(logvar.double().exp().mean(dim=0))
    sign, logdet = torch.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (torch.trace(cov) + m @ m - d - logdet))


def sharpness(x: torch.Tensor, recon: torch.Tensor) -> float:
    """How much of the inputs' edge energy the reconstructions keep:

        S = Σ |∇ recon|² / Σ |∇ x|²,   ∇ = horizontal and vertical neighbour differences.

    1 means as sharp as the inputs; a per-pixel likelihood whose code is uncertain decodes the
    *mean* of the images that code could stand for, which smooths edges and pushes S towards 0.
    x, recon (N, C, H, W) in [0, 1]."""

    def energy(a: torch.Tensor) -> torch.Tensor:
        a = a.double()
        return (a[..., :, 1:] - a[..., :, :-1]).pow(2).sum() + (a[..., 1:, :] - a[..., :-1, :]).pow(2).sum()

    if x.shape != recon.shape:
        raise ValueError(f"inputs {tuple(x.shape)} and reconstructions {tuple(recon.shape)} differ in shape.")
    ref = energy(x)
    return float(energy(recon) / ref) if ref > 0 else float("nan")


def diagnose(
    mu: torch.Tensor, logvar: torch.Tensor, kl_per_dim: torch.Tensor, kl_levels: list[float] | None = None
) -> Diagnosis:
    """Everything above from the posteriors of a data set: mu, logvar (N, D) and kl_per_dim (D,)
    of the top latent; ``kl_levels`` (bottom first) when the model has several levels."""
    act = activity(mu)
    au = int((act > ACTIVE_THRESHOLD).sum())
    total = float(sum(kl_levels)) if kl_levels is not None else float(kl_per_dim.sum())
    collapsed = _collapsed(total, au, kl_levels)
    gap = aggregate_prior_gap(mu, logvar)
    findings = state_findings(total, au, mu.shape[1], gap, kl_levels)
    return Diagnosis(au, act.tolist(), kl_per_dim.tolist(), total, collapsed, gap, findings)


def _collapsed(total_kl: float, active: int, kl_levels: list[float] | None) -> bool:
    """The whole model ignores its latents. With several levels the lower ones can carry the
    information the top one does not, so only the total KL decides; an autoencoder (no level
    pays KL: ``kl_levels == []``) cannot collapse this way."""
    if kl_levels is not None and not kl_levels:
        return False
    if kl_levels and len(kl_levels) > 1:
        return total_kl < COLLAPSE_KL
    return total_kl < COLLAPSE_KL or active == 0


def state_findings(
    total_kl: float,
    active: int,
    d: int,
    gap: float,
    kl_levels: list[float] | None = None,
    sharp: float | None = None,
    mutual_info: float | None = None,
) -> list[str]:
    """What one evaluation says: collapse, inactive units, prior holes — each with its fix.
    ``active`` and ``d`` count the top latent's dimensions; ``kl_levels`` is bottom first;
    ``mutual_info`` is the top latent's I(x; z) (information.py), when measured."""
    out = []
    collapsed = _collapsed(total_kl, active, kl_levels)
    top_collapsed = bool(kl_levels) and len(kl_levels) > 1 and kl_levels[-1] < COLLAPSE_KL and not collapsed
    if top_collapsed:
        out.append(
            f"The top level z₂ collapsed: its KL is {kl_levels[-1]:.2f} nats while z₁ carries "
            f"{kl_levels[0]:.2f}, so q(z₁|x, z₂) encodes everything and the model is a one-level "
            "VAE in effect (the map of z₂ shows no structure). Fix: free bits (e.g. 0.5 nats per "
            "dimension) or a KL warm-up."
        )
    elif collapsed:
        out.append(
            f"Posterior collapse: the KL is {total_kl:.2f} nats and {active} of {d} dimensions are "
            "active, so the decoder ignores z and every reconstruction tends to the average image"
            + (
                f"; z says almost nothing about which image it encodes (I(x; z) = {mutual_info:.2f} nats)"
                if mutual_info is not None and mutual_info == mutual_info
                else ""
            )
            + ". Fix: KL annealing (linear warm-up), free bits, or a lower β."
        )
    elif active < d and not top_collapsed:
        out.append(
            f"{d - active} of {d} latent dimensions are inactive (their KL is near 0): the model "
            "needs fewer dimensions than it has, or β is pushing them to the prior."
        )
    if gap > HOLES_GAP_PER_DIM * d and not collapsed:
        out.append(
            f"The codes cover the prior poorly (aggregate-posterior gap {gap:.2f} nats): prior "
            "samples land in holes no training image maps to, so they look poor. "
            "Fix: a higher β, a smaller latent, or more training."
        )
    if sharp is not None and sharp < BLUR_SHARPNESS and not collapsed:
        out.append(
            f"Reconstructions are blurry: they keep {100 * sharp:.0f}% of the inputs' edge energy. "
            "A per-pixel likelihood makes the decoder output the mean of every image the code "
            "could stand for; a code that carries little leaves many candidates, and their mean "
            "is a blur. Fix: make detail worth encoding (a smaller Gaussian σ, or Bernoulli), "
            "give it room (more latent dimensions, a lower β), or a stronger decoder."
        )
    return out


def training_findings(history: list[EpochRecord], stop_reason: str | None = None) -> list[str]:
    """Sentences about the course of training, from the epoch records (trainer.history):
    the last epoch's diagnosis plus trends no single epoch shows."""
    out: list[str] = []
    if stop_reason:
        out.append(stop_reason)
    if not history:
        return out
    last = history[-1]
    d = len(last.kl_per_dim) or 1
    out += state_findings(
        last.test_kl,
        last.active_units,
        d,
        last.prior_gap,
        last.test_kl_levels,
        last.sharpness,
        last.mutual_info,
    )
    if len(history) >= 4:
        a, b = history[-4], history[-1]
        recon_gain = a.test_recon - b.test_recon
        if b.test_kl > a.test_kl + 0.5 and recon_gain < 0.005 * abs(a.test_recon):
            out.append(
                "The KL is rising while reconstruction stalls: the code spends information "
                "without improving the images. Fix: a higher β or an earlier end to training."
            )
        if b.test_loss > a.test_loss + 0.01 * abs(a.test_loss) and b.train_loss < a.train_loss:
            out.append(
                "The test loss rises while the training loss falls: the model is overfitting. "
                "Fix: fewer epochs, a smaller model, or more data."
            )
    if last.skipped_steps:
        out.append(
            f"{last.skipped_steps} steps had a non-finite loss or gradient and were skipped. "
            "Fix: a lower learning rate; keep gradient clipping on and log-variance clamped."
        )
    return out


@dataclass
class LabelInformation:
    """How much each latent dimension says about the class label (β-VAE lessons, measured)."""

    mi_per_dim: list[float]  # (D,) I(mu_d; y) in nats, mu_d discretised into equal-count bins
    label_entropy: float  # H(y), nats: the most any dimension can carry
    mig: float  # mutual information gap (Chen et al. 2018): (I_top1 − I_top2) / H(y), in [0, 1]


def label_information(mu: torch.Tensor, y: torch.Tensor, bins: int = 20) -> LabelInformation:
    """I(mu_d; y) per dimension and the MIG for the label as the single known factor.

    A MIG near 1 means one dimension alone carries the label (disentangled with respect to it);
    near 0, the label is spread over several dimensions or absent."""
    from sklearn.metrics import mutual_info_score

    m = mu.detach().double().cpu().numpy()
    labels = y.cpu().numpy()
    if len(m) < 2 * bins:
        raise ValueError(f"at least {2 * bins} points are needed to estimate mutual information.")
    mi = []
    for d in range(m.shape[1]):
        edges = np.quantile(m[:, d], np.linspace(0, 1, bins + 1)[1:-1])
        mi.append(float(mutual_info_score(labels, np.searchsorted(edges, m[:, d]))))
    counts = np.bincount(labels)
    p = counts[counts > 0] / len(labels)
    h = float(-(p * np.log(p)).sum())
    top = [*sorted(mi, reverse=True), 0.0]
    return LabelInformation(mi, h, (top[0] - top[1]) / h if h > 0 else 0.0)
