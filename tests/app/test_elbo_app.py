"""The "Inside the ELBO" tab through real gradio_client sessions: the KL's information split
(/information) and the gaps of one image (/image_gaps)."""

from __future__ import annotations

import json
import math

import pytest

gradio_client = pytest.importorskip("gradio_client")


def _client(url):
    return gradio_client.Client(url, verbose=False)


def test_the_kl_splits_into_information_and_the_marginal_kl(url):
    plot, text, info = _client(url).predict(api_name="/information")
    assert info["mutual_info"] + info["marginal_kl"] == pytest.approx(info["kl"], rel=1e-9)
    assert 0 < info["mutual_info"] <= info["log_n"] == pytest.approx(math.log(info["n"]))
    assert info["marginal_kl"] > -0.05 and info["n"] == 2000
    assert f"{info['mutual_info']:.2f} nats" in text
    assert plot is not None


def test_the_gaps_of_one_image_are_ordered_and_seeded(url):
    c = _client(url)
    _, _, text, a = c.predict(cls="7", index=1, k=500, api_name="/image_gaps")
    assert a["encoder_neg_elbo"] >= a["optimised_neg_elbo"] >= a["iwae"] - 0.1
    assert a["amortization_gap"] == pytest.approx(a["encoder_neg_elbo"] - a["optimised_neg_elbo"])
    assert a["k"] == 500 and a["steps"] == 100 and f"{a['amortization_gap']:.2f}" in text
    *_, b = c.predict(cls="7", index=1, k=500, api_name="/image_gaps")
    assert a == b


def test_bad_inputs_to_the_gaps_get_a_sentence(url):
    c = _client(url)
    with pytest.raises(Exception, match="Importance samples K"):
        c.predict(cls="7", index=1, k=0, api_name="/image_gaps")
    with pytest.raises(Exception, match="Class"):
        c.predict(cls="no such class", index=1, k=100, api_name="/image_gaps")


def test_an_autoencoder_gets_a_sentence_not_a_split():
    from vae_explorer.config import TrainConfig
    from vae_explorer.session import Workspace
    from vae_explorer.ui import elbo_tab
    from vae_explorer.ui.common import Refused

    ws = Workspace.from_shipped()
    ws.new_model("digits", TrainConfig(), latent_dim=2, hidden_dim=32, autoencoder=True)
    with pytest.raises(Refused, match="autoencoder"):
        elbo_tab.on_information(ws)
    with pytest.raises(Refused, match="autoencoder"):
        elbo_tab.on_gaps(ws, "7", 0, 100)


def test_a_sweep_puts_each_beta_on_the_plane_and_a_point_loads_its_model(url):
    c = _client(url)
    value, text = c.predict(betas="0.5, 4", epochs=1, api_name="/sweep")
    plane = json.loads(value)
    assert [m["beta"] for m in plane["models"]] == [0.5, 4.0] and "2 models trained" in text
    (r_lo, d_lo), (r_hi, d_hi) = (m["path"][-1] for m in plane["models"])
    assert r_lo > r_hi and d_lo < d_hi  # β = 0.5 spends more rate for less distortion than β = 4
    assert all(0 <= m["info"] <= m["path"][-1][0] + 1e-6 for m in plane["models"])  # I(x; z) ≤ R
    # the distortion floor is drawn only when it is near the points (here it is 46 nats, far below)
    assert plane["floor"] is None or plane["floor"] < min(d_lo, d_hi)
    assert plane["elbo_lines"] and all(plane["bounds"][2] < v < plane["bounds"][3] for v in (d_lo, d_hi))
    before = c.predict(api_name="/model_info")["weights_sha256"]
    value, text = c.predict(beta=4, api_name="/sweep_load")
    assert "β = 4.0 is now this session's model" in text and json.loads(value)["selected"] == 1
    after = c.predict(api_name="/model_info")
    assert after["weights_sha256"] != before and after["epoch"] == 1


def test_bad_sweeps_get_a_sentence(url):
    c = _client(url)
    with pytest.raises(Exception, match="β values"):
        c.predict(betas="one, two", epochs=1, api_name="/sweep")
    with pytest.raises(Exception, match="must differ"):
        c.predict(betas="1, 1", epochs=1, api_name="/sweep")
    with pytest.raises(Exception, match="Run a β sweep first"):
        gradio_client.Client(url, verbose=False).predict(beta=1, api_name="/sweep_load")
