"""UI state kept per browser session outside the Workspace: the remembered map clicks."""

from __future__ import annotations

import numpy as np
import torch

from vae_explorer import shipped_checkpoints
from vae_explorer.session import Workspace
from vae_explorer.ui import common
from vae_explorer.ui.common import Clicks, recent, remember


def test_two_clicks_are_kept_for_the_model_they_were_made_on():
    ws = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    clicks = None
    for i in range(3):
        clicks = remember(clicks, ws, np.array([i, -i]), None)
    assert isinstance(clicks, Clicks) and [p[0].tolist() for p in recent(clicks, ws)] == [[1, -1], [2, -2]]
    ws.load(shipped_checkpoints()["digits-2d"])  # the same file, but a new model version
    assert recent(clicks, ws) == ()  # another model: its places mean nothing on this map
    assert recent(None, ws) == () and recent("crafted", ws) == ()


def test_only_a_workspace_older_than_its_time_to_live_counts_as_expired(monkeypatch):
    """The page's first events race (each finds no workspace yet): silent. A workspace missing
    after SESSION_TTL since it was made did expire: the user is told."""
    monkeypatch.setattr(common, "SESSION_TTL", 100.0)
    monkeypatch.setattr(common, "_STARTED", common.OrderedDict())
    monkeypatch.setattr(common, "_SHORTEST_TTL", common.math.inf)
    assert not common.expired_before(None, now=0.0)  # no session (a direct call): nothing to say
    assert not common.expired_before("s", now=0.0)  # a new session
    assert not common.expired_before("s", now=0.5)  # the page load's race, half a second later
    assert not common.expired_before("s", now=99.0)  # still within the first one's lifetime
    assert common.expired_before("s", now=100.5)  # it could have expired: told
    assert not common.expired_before("s", now=101.0)  # the race after that start: silent again
    assert not common.expired_before("t", now=101.0)  # sessions are separate
