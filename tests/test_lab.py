"""The failure-mode lab: each preset's detector fires for the failure and not for the fix."""

from __future__ import annotations

import pytest
import torch

from vae_explorer import lab
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


def test_detectors_read_the_records_the_trainer_writes():
    healthy = {
        "test_kl": 3.0,
        "active_units": 8,
        "prior_gap": 0.05,
        "kl_per_dim": [0.4] * 8,
        "skipped_steps": 0,
    }
    assert not lab.collapsed([healthy], False) and not lab.prior_holes([healthy], False)
    assert not lab.non_finite([healthy], False)
    assert lab.collapsed([{**healthy, "test_kl": 0.01}], False)
    assert lab.prior_holes([{**healthy, "prior_gap": 2.0}], False)
    assert lab.non_finite([], True) and lab.non_finite([{**healthy, "skipped_steps": 2}], False)
    assert not lab.collapsed([], False) and not lab.prior_holes([], False)
