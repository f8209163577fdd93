"""Every public endpoint advertises a default for every parameter, and calling it with nothing
but those defaults works: a script's first call, copied from the API page, never fails."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

gradio_client = pytest.importorskip("gradio_client")

# Inputs a user must give (a file, a drawing): their default is "nothing", and the call answers
# with nothing changed or a sentence asking for it, never a crash.
NEEDS_A_FILE = {
    "/upload_checkpoint": "file",
    "/upload_data": "file",
    "/encode_image": "file",
    "/encode_drawing": "drawing",
}
# Long-running endpoints: their defaults are accepted once the first progress update arrives.
STREAMING = ("/train", "/continue_training", "/compare_train", "/lab_run", "/sweep", "/slow")
# Endpoints that act on what an earlier call made: in a fresh session they answer with a
# sentence naming that call.
NEEDS_AN_EARLIER_CALL = {"/sweep_load": "run a β sweep first"}


def _endpoints(url: str) -> dict:
    with urllib.request.urlopen(url + "gradio_api/info", timeout=30) as r:
        return json.load(r)["named_endpoints"]


def test_every_parameter_has_a_usable_default(url):
    endpoints = _endpoints(url)
    assert len(endpoints) >= 21
    missing = []
    for name, ep in endpoints.items():
        for p in ep["parameters"]:
            if NEEDS_A_FILE.get(name) == p["parameter_name"]:
                continue
            if not p.get("parameter_has_default") or p.get("parameter_default") is None:
                missing.append(f"{name}({p['parameter_name']})")
    assert missing == [], f"parameters without a usable default: {missing}"


@pytest.mark.slow
def test_every_endpoint_called_with_its_defaults_alone_works(url):
    endpoints = _endpoints(url)
    failed = []
    for name in endpoints:
        client = gradio_client.Client(url, verbose=False)  # a fresh session each, as a new script
        try:
            if name in STREAMING:
                job = client.submit(api_name=name)
                deadline = time.time() + 120
                while not job.outputs() and not job.done() and time.time() < deadline:
                    time.sleep(0.1)
                if job.done() and job.exception() is not None:
                    raise job.exception()
                assert job.outputs(), f"{name} gave no progress within 120 s"
                job.cancel()
                client.predict(api_name="/stop")
            elif name in NEEDS_AN_EARLIER_CALL:
                with pytest.raises(Exception) as err:
                    client.predict(api_name=name)
                assert NEEDS_AN_EARLIER_CALL[name] in str(err.value).lower(), f"{name}: {err.value}"
            elif name in NEEDS_A_FILE:
                try:
                    client.predict(api_name=name)
                except Exception as err:  # a sentence asking for the input is fine
                    wanted = f"no value provided for required argument: {NEEDS_A_FILE[name]}"
                    assert wanted in str(err).lower(), f"{name}: {err}"
            else:
                client.predict(api_name=name)
        except Exception as err:
            failed.append(f"{name}: {type(err).__name__}: {str(err)[:200]}")
        finally:
            client.close()
    assert failed == [], "\n".join(failed)
