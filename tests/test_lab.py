"""The failure-mode lab: each preset's detector fires for the failure and not for the fix."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import epoch_record
from vae_explorer import lab
from vae_explorer.diagnostics import BLUR_SHARPNESS, HOLES_GAP_PER_DIM
from vae_explorer.session import Workspace


@pytest.fixture(scope="module")
def ws():
    return Workspace.from_shipped("digits-2d", device=torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(lab.PRESETS))
def test_the_detector_fires_for_the_failure_and_not_for_the_fix(ws, name):
    preset = lab.PRESETS[name]
    list(lab.train(ws, preset.failure))
    assert lab.fired(ws, preset), f"{name}: the failure run did not show the failure"
    list(lab.train(ws, preset.repaired))
    assert not lab.fired(ws, preset), f"{name}: the fix run still shows the failure"
    assert all(torch.isfinite(v).all() for v in ws.model.state_dict().values())


def test_every_preset_trains_on_28x28_mnist():
    for preset in lab.PRESETS.values():
        assert preset.failure.dataset == preset.repaired.dataset == "mnist-10k"


def test_detectors_read_the_records_the_trainer_writes():
    base = {"test_kl": 3.0, "active_units": 8, "prior_gap": 0.05, "kl_per_dim": [0.4] * 8}

    def rec(**changes):
        return epoch_record(**{**base, **changes})

    healthy = rec()
    assert not lab.collapsed([healthy], False) and not lab.prior_holes([healthy], False)
    assert not lab.non_finite([healthy], False)
    assert lab.collapsed([rec(test_kl=0.01)], False)
    assert lab.prior_holes([rec(prior_gap=2 * HOLES_GAP_PER_DIM * 8)], False)
    assert not lab.prior_holes([rec(prior_gap=0.5 * HOLES_GAP_PER_DIM * 8)], False)
    assert lab.blurry([rec(sharpness=BLUR_SHARPNESS - 0.01)], False)
    assert not lab.blurry([rec(sharpness=BLUR_SHARPNESS + 0.01)], False)
    assert not lab.blurry([rec(sharpness=float("nan"))], False)  # unknown: no verdict
    assert lab.non_finite([], True) and lab.non_finite([rec(skipped_steps=2)], False)
    assert not lab.collapsed([], False) and not lab.prior_holes([], False)


@pytest.mark.slow
def test_the_lagging_encoder_fix_keeps_the_kl_not_the_information(ws):
    # What the preset's text claims, measured: aggressive encoder steps keep the KL several times
    # higher, and the mutual information I(x; z) is no higher (the extra KL is KL(q(z) ‖ p(z))).
    preset = lab.PRESETS["lagging"]
    list(lab.train(ws, preset.failure))
    plain = ws.run.history[-1]
    list(lab.train(ws, preset.repaired))
    aggressive = ws.run.history[-1]
    assert aggressive.test_kl > 3 * plain.test_kl
    assert aggressive.mutual_info < plain.mutual_info  # no more information about x
    assert aggressive.marginal_kl > 0.5 * aggressive.test_kl  # the KL is mostly codes off the prior
    assert aggressive.test_loss > plain.test_loss + 20  # and the bound is worse
    assert [r.part for r in ws.step_log[:8]] == ["encoder"] * 3 + ["decoder"] + ["encoder"] * 3 + ["decoder"]
