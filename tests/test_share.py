"""A link that carries the lecture: the setup as a query and back, checked like any input."""

from __future__ import annotations

from urllib.parse import parse_qsl

from vae_explorer.settings import BY_NAME, NAMES
from vae_explorer.ui.share import link_query, note, read_query


def _defaults() -> dict:
    return {name: BY_NAME[name].default for name in NAMES}


def test_a_setup_survives_the_round_trip_through_a_link():
    values = {**_defaults(), "dataset": "digits", "beta": 4.0, "epochs": 3, "binarize": True, "lr": 0.0005}
    query = link_query(values, "Inside the ELBO", lecture=True)
    params = dict(parse_qsl(query.lstrip("?")))
    assert params["beta"] == "4.0" and params["binarize"] == "1" and params["lecture"] == "1"
    assert params["tab"] == "elbo"
    shared = read_query(params)
    assert shared.values == values and shared.tab == "elbo" and shared.problems == []
    assert "settings set" in note(shared)
    # the Train tab is where the page opens anyway; no lecture mode: neither is in the link
    plain = dict(parse_qsl(link_query(values, "Train", lecture=False).lstrip("?")))
    assert "tab" not in plain and "lecture" not in plain


def test_bad_values_and_unknown_keys_are_named_and_nothing_else_changes():
    shared = read_query({"beta": "1000", "epochs": "3", "arch": "transformer", "foo": "1", "tab": "nope"})
    assert shared.values == {"epochs": 3}  # the one good value only
    text = " ".join(shared.problems)
    assert "β" in text and "Architecture must be one of" in text and "'foo'" in text
    assert "tab must be one of" in text and shared.tab is None
    assert "stay as they were" in note(shared)


def test_hide_names_controls_and_a_bad_one_is_reported():
    shared = read_query({"hide": "seed, lr,warp_drive"})
    assert shared.hide == ["seed", "lr"] and "warp_drive" in shared.problems[0]


def test_switches_read_one_and_zero_and_a_link_of_many_keys_is_ignored():
    assert read_query({"binarize": "0", "conditional": "true"}).values == {
        "binarize": False,
        "conditional": True,
    }
    assert read_query({"binarize": "maybe"}).problems
    many = read_query({f"k{i}": "1" for i in range(100)})
    assert many.values == {} and "more than this app reads" in many.problems[0]
    assert note(read_query({})) == ""
