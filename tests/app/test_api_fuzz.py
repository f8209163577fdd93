"""Every numeric input of every public endpoint, sent what the UI never sends: 0, -1, NaN, ±Inf,
1e308, 2**63, 3.7, "abc", None and a list. Each gets a valid result or an error whose message
is a sentence naming the input (never Gradio's bare "Error"), and the server keeps answering.

gradio_client sends everything JSON can carry. Its encoder refuses NaN and ±Inf, but a script
speaking HTTP can send them (Python's json module reads the bare tokens), so those go through
Gradio's REST route (raw_http.call)."""

from __future__ import annotations

import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from vae_explorer.checkpoint import load_checkpoint

from .raw_http import call, upload

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.slow

NAN, INF = float("nan"), float("inf")
HUGE, BIG_INT, TEXT, LIST = 1e308, 2**63, "abc", [1, 2]
JSON_VALUES = [0, -1, HUGE, BIG_INT, 3.7, TEXT, None, LIST]
NON_JSON = [NAN, INF, -INF]  # not JSON: sent over raw HTTP
UNUSABLE = [HUGE, BIG_INT, TEXT, LIST, *NON_JSON]  # no input may accept these
GENERIC = "has not enabled verbose error reporting"  # gradio_client's text for Gradio's bare "Error"

TRAIN = {"dataset": "digits", "hidden_dim": 16, "latent_dim": 2, "epochs": 1, "batch_size": 64}
# Valid values for the inputs that are not being fuzzed, per endpoint (the rest keep the form's
# defaults, as the API documents). Every public endpoint with a numeric input is here; a test
# below fails when one is added without being listed.
SETUP = {
    "/train": TRAIN,
    "/continue_training": TRAIN,
    "/reset": TRAIN,
    "/save_checkpoint": TRAIN,  # the session's settings travel with the file
    "/encode_image": {"method": "identity"},  # and the file, below
    "/latent_map": {"method": "identity"},
    "/manifold": {"method": "identity", "resolution": 4},
    "/decode_point": {"method": "identity"},
    "/interp_strip": {},
    "/interp_frame": {},
    "/sample": {"n": 8},
    "/traverse": {},
    "/decode": {"z_text": "[0.5, -0.5]"},  # on the conditional model, so that the label counts
    "/interpolate": {"z0_text": "[0, 0]", "z1_text": "[1, -1]", "steps": 4},
    "/reparameterize": {"method": "identity"},
    "/encode_drawing": {"method": "identity"},  # no drawing: only the numbers are checked first
    "/compare": {},
    "/compare_view": {},
    "/compare_train": {"epochs": 1},
    "/image_gaps": {"k": 50},
    "/sweep": {"betas": "1, 2"},
    "/sweep_load": {},
    "/step": TRAIN,
    "/upload_data": {},  # no file: the numbers are checked before the file is asked for
}
# Slow takes its steps at four a second to the end of the epoch: a paced run per case would take
# minutes. Its inputs are Step's, checked by the same code (step_view._steps), fuzzed there.
SAME_AS = {"/slow": "/step"}
CONDITIONAL = {"/decode"}
# Saving records the session's settings beside the model and leaves out any that fail their
# checks, by design: the download still works. There, a bad value must be absent from the file.
KEEPS_ONLY_GOOD_SETTINGS = {"/save_checkpoint"}


@pytest.fixture(scope="module")
def api(url):
    return gradio_client.Client(url, verbose=False).view_api(return_format="dict", print_info=False)[
        "named_endpoints"
    ]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "digit.png"
    im = Image.fromarray((np.eye(24) * 255).astype(np.uint8))
    im.save(path)
    return path


def _numeric(params: list[dict]) -> list[dict]:
    return [p for p in params if p["component"] in ("Slider", "Number")]


def _names(p: dict) -> set[str]:
    """Ways a message may name the input: its label, its API name, or a word of its label."""
    label = (p.get("label") or "").lower()
    words = {w for w in re.findall(r"[^\W\d_]+", label) if len(w) >= 4 or not w.isascii()}
    return {label, p["parameter_name"].replace("_", " "), *words} - {""}


def _problem(message, p: dict) -> str | None:
    """Why ``message`` is not a clear answer for input ``p``, or None when it is."""
    if not isinstance(message, str) or not message.strip() or GENERIC in message:
        return "Gradio's bare error"
    text = message.strip()
    if not text.endswith(".") or len(text.split()) < 3 or len(text) > 300:
        return "not a short sentence"
    if not any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text.lower()) for n in _names(p)):
        return "does not name the input"
    return None


def test_every_public_numeric_input_is_covered(api):
    with_numbers = {name for name, ep in api.items() if _numeric(ep["parameters"])}
    assert with_numbers == set(SETUP) | set(SAME_AS)
    for name, twin in SAME_AS.items():
        assert api[name]["parameters"] == api[twin]["parameters"]
    assert sum(len(_numeric(api[n]["parameters"])) for n in SETUP) >= 50


def _client(url: str, endpoint: str):
    client = gradio_client.Client(url, verbose=False)
    if endpoint in CONDITIONAL:
        client.predict("digits-conditional", api_name="/load_checkpoint")
    return client


@pytest.mark.parametrize("endpoint", list(SETUP))
def test_every_numeric_input_gets_a_result_or_a_clear_error(url, api, image, endpoint):
    params = api[endpoint]["parameters"]
    base = {p["parameter_name"]: p["parameter_default"] for p in params} | SETUP[endpoint]
    raw_base = dict(base)
    if endpoint == "/encode_image":
        base["file"] = handle_file(str(image))
        raw_base["file"] = {"path": upload(url, image), "meta": {"_type": "gradio.FileData"}}
    order = [p["parameter_name"] for p in params]
    local = threading.local()

    def send(case):
        p, value = case
        name = p["parameter_name"]
        if not any(value is v for v in NON_JSON):
            if not hasattr(local, "client"):
                local.client = _client(url, endpoint)  # one session per worker thread
            try:
                return case, "ok", local.client.predict(**{**base, name: value}, api_name=endpoint)
            except AppError as err:
                return case, "error", err.message
        args = {**raw_base, name: value}
        return case, *call(url, endpoint, [args[k] for k in order])

    cases = [(p, v) for p in _numeric(params) for v in JSON_VALUES + NON_JSON]
    problems = []
    # A few sessions at once: the cases are independent, and a lecture hall sends them that way.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for (p, value), outcome, message in pool.map(send, cases):
            where = f"{p['parameter_name']}={value!r}"
            if outcome not in ("ok", "error"):
                problems.append(f"{where}: {outcome} {message!r}")
            elif outcome == "ok" and any(value is v for v in UNUSABLE):
                if endpoint in KEEPS_ONLY_GOOD_SETTINGS:
                    saved = load_checkpoint(message).session  # ``message`` holds the output here
                    if p["parameter_name"] in saved:
                        problems.append(f"{where}: saved as {saved[p['parameter_name']]!r}")
                else:
                    problems.append(f"{where}: accepted")  # not a number, or none any input allows
            elif outcome == "error" and (why := _problem(message, p)):
                problems.append(f"{where}: {why}: {message!r}")
    assert problems == [], "\n".join(problems)
    # The server still answers an old session and a new one.
    info = _client(url, endpoint).predict(api_name="/model_info")
    assert info["dataset"] in ("mnist-10k", TRAIN["dataset"])  # the default model, or one trained here
    assert not gradio_client.Client(url, verbose=False).predict(api_name="/model_info")["training"]


def test_slider_values_far_outside_their_range_name_the_slider_and_its_range(url):
    client = gradio_client.Client(url, verbose=False)
    before = client.predict(api_name="/model_info")["weights_sha256"]
    for value, pattern in [
        (10**6, r"^Epochs: 1e\+06 is greater than maximum value \d+\.$"),
        (-(10**6), r"^Epochs: -1e\+06 is less than minimum value 1\.$"),
        (None, r"^Epochs must be a number from 1 to \d+\.$"),
    ]:
        with pytest.raises(AppError) as info:
            client.predict(**{**TRAIN, "epochs": value}, api_name="/train")
        assert re.match(pattern, info.value.message), info.value.message
    assert client.predict(api_name="/model_info")["weights_sha256"] == before


def test_a_float_where_a_whole_number_goes_is_refused_not_rounded(url):
    client = gradio_client.Client(url, verbose=False)
    with pytest.raises(AppError, match=r"^Seed must be a whole number\.$"):
        client.predict(n=8, temperature=1.0, seed=3.7, label="all", api_name="/sample")
    kind, message = call(url, "/sample", [8, 1.0, math.nan, "all"])
    assert (kind, message) == ("error", "Seed must be a whole number.")
