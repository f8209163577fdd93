"""The "Inside the ELBO" tab through real gradio_client sessions: the KL's information split
(/information) and the gaps of one image (/image_gaps)."""

from __future__ import annotations

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
