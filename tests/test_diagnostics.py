"""Diagnostics (vae_explorer/diagnostics.py): the measures (aggregate-posterior gap to the prior,
active units, label information, sharpness, the diagnosis) and the findings in words, each of
which fires for its failure and stays quiet otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import epoch_record
from vae_explorer import diagnostics
from vae_explorer.diagnostics import state_findings, training_findings


def _rec(epoch, test_recon, test_kl, train_loss, active=2, gap=0.1, skipped=0):
    return epoch_record(
        epoch=epoch,
        test_recon=test_recon,
        test_kl=test_kl,
        test_loss=test_recon + test_kl,
        train_loss=train_loss,
        active_units=active,
        prior_gap=gap,
        skipped_steps=skipped,
    )


def test_a_healthy_run_has_no_findings():
    history = [_rec(e, 30 - e, 1.0 + 0.05 * e, 32 - e) for e in range(6)]
    assert training_findings(history) == []


def test_collapse_inactive_units_and_prior_holes_are_named():
    assert "Posterior collapse" in state_findings(0.01, 0, 10, 0.0)[0]
    assert "inactive" in state_findings(3.0, 4, 10, 0.0)[0]
    assert "cover the prior poorly" in state_findings(3.0, 2, 2, 5.0)[0]
    assert not any("cover the prior" in f for f in state_findings(0.0, 0, 2, 5.0))  # collapse says it all


def test_trends_over_epochs_are_named():
    stalls = [_rec(e, 25.0, 1.0 + e, 27.0 - 0.1 * e) for e in range(4)]
    assert any("KL is rising while reconstruction stalls" in f for f in training_findings(stalls))
    overfit = [_rec(e, 25.0 + e, 1.0, 26.0 - e) for e in range(4)]
    assert any("overfitting" in f for f in training_findings(overfit))
    skipped = [_rec(0, 25.0, 1.0, 26.0, skipped=3)]
    assert any("3 steps had a non-finite" in f for f in training_findings(skipped))
    assert training_findings([], "Rolled back.") == ["Rolled back."]


def test_label_information_finds_the_dimension_that_carries_the_label():
    import math

    import torch

    from vae_explorer.diagnostics import label_information

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (4000,), generator=g)
    mu = torch.randn((4000, 3), generator=g)
    mu[:, 1] += 6 * y  # dimension 1 encodes the label, 0 and 2 are noise
    info = label_information(mu, y)
    assert math.isclose(info.label_entropy, math.log(4), rel_tol=0.01)
    assert info.mi_per_dim[1] > 0.9 * info.label_entropy
    assert max(info.mi_per_dim[0], info.mi_per_dim[2]) < 0.05
    assert info.mig > 0.85
    mu[:, 2] = mu[:, 1]  # the label now in two dimensions: the gap closes
    assert label_information(mu, y).mig < 0.05


def test_sharpness_is_one_for_the_inputs_lower_for_a_blur_and_zero_for_flat_images():
    from torch.nn.functional import avg_pool2d

    from vae_explorer.diagnostics import sharpness

    g = torch.Generator().manual_seed(0)
    x = torch.rand((16, 1, 8, 8), generator=g)
    assert sharpness(x, x) == pytest.approx(1.0)
    blurred = avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    blurred_more = avg_pool2d(blurred, 3, stride=1, padding=1, count_include_pad=False)
    assert 0 < sharpness(x, blurred_more) < sharpness(x, blurred) < 0.5
    assert sharpness(x, torch.full_like(x, x.mean().item())) == 0.0
    # Hand-made case: one vertical edge (0 | 1) in a 2×2 image has energy 2; half of it, 0.5.
    edge = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert sharpness(edge, edge * 0.5 + 0.25) == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"reconstructions \(16, 1, 4, 8\) differ in shape"):
        sharpness(x, x[:, :, :4])


def test_blurry_reconstructions_are_a_finding_unless_the_model_collapsed():
    from vae_explorer.diagnostics import BLUR_SHARPNESS, state_findings

    blur = state_findings(3.0, 8, 8, 0.1, sharp=BLUR_SHARPNESS - 0.1)
    assert any("blurry" in f for f in blur)
    assert not any("blurry" in f for f in state_findings(3.0, 8, 8, 0.1, sharp=BLUR_SHARPNESS + 0.1))
    collapsed = state_findings(0.01, 0, 8, 0.0, sharp=0.05)
    assert any("collapse" in f for f in collapsed) and not any("blurry" in f for f in collapsed)


# --------------------------------------------------------------------------------------------
# Measures: the aggregate posterior against the prior, active units, the diagnosis
# --------------------------------------------------------------------------------------------


def test_prior_gap_zero_for_the_prior_itself() -> None:
    gap = diagnostics.aggregate_prior_gap(torch.zeros(100, 3), torch.zeros(100, 3))
    assert gap == pytest.approx(0.0, abs=1e-12)


def test_prior_gap_small_when_moments_match() -> None:
    n, d = 20_000, 3
    g = torch.Generator().manual_seed(0)
    mu = math.sqrt(0.5) * torch.randn((n, d), generator=g)  # Cov(mu) = 0.5 I
    logvar = torch.full((n, d), math.log(0.5))  # E[σ²] = 0.5: total covariance I
    gap = diagnostics.aggregate_prior_gap(mu, logvar)
    assert 0.0 <= gap < 2e-3  # sampling error only: O(d² / n)


def test_prior_gap_closed_form_for_shifted_and_shrunk_codes() -> None:
    n, d = 20_000, 2
    g = torch.Generator().manual_seed(1)
    mu = 3.0 + 0.1 * torch.randn((n, d), generator=g)
    logvar = torch.full((n, d), math.log(0.01))
    gap = diagnostics.aggregate_prior_gap(mu, logvar)
    # KL(N(3·1, 0.02 I) || N(0, I)) = ½ (d·0.02 + 9d − d − d·log 0.02)
    expected = 0.5 * (d * 0.02 + 9 * d - d - d * math.log(0.02))
    assert gap == pytest.approx(expected, rel=0.01)
    assert gap > 10


def test_active_units_threshold() -> None:
    n = 100
    s = torch.tensor([1.0, -1.0]).repeat(n // 2)  # mean 0, unbiased variance n/(n−1)
    scale2 = torch.tensor([0.0, 0.0098, 0.0102, 0.5, 4.0])  # variances ×100/99: .0099 and .0103
    mu = s[:, None] * scale2.sqrt()[None, :] + 7.0
    act = diagnostics.activity(mu)
    torch.testing.assert_close(act, scale2 * n / (n - 1), rtol=1e-4, atol=1e-6)
    assert diagnostics.active_units(mu) == 3
    assert diagnostics.active_units(mu, threshold=1.0) == 1
    assert diagnostics.active_units(mu[:1]) == 0  # one image: no variance to speak of


def test_diagnose_flags_collapse_and_prior_holes() -> None:
    collapsed = diagnostics.diagnose(torch.zeros(50, 4), torch.zeros(50, 4), torch.zeros(4))
    assert collapsed.collapsed and collapsed.active_units == 0
    assert collapsed.prior_gap == pytest.approx(0.0, abs=1e-9)
    g = torch.Generator().manual_seed(2)
    mu = 4.0 + 0.3 * torch.randn((200, 2), generator=g)
    holes = diagnostics.diagnose(mu, torch.full((200, 2), -6.0), torch.tensor([3.0, 3.0]))
    assert not holes.collapsed
    assert holes.prior_gap > 0.5 * 2
    assert any("prior" in f for f in holes.findings)
