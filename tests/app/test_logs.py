"""What the server's log says of a user's bad input: one line per refusal, never a traceback."""

from __future__ import annotations

import gradio_client
import pytest
from gradio_client.exceptions import AppError

BAD_CALLS = [
    ({"n": 8, "temperature": 1.0, "seed": 3.7, "label": "all"}, "/sample", "Seed must be a whole number."),
    ({"x": "abc", "y": 0, "method": "identity", "n": 500}, "/decode_point", "x must be a number"),
    ({"z_text": "[1, 2, oops]", "label": 0}, "/decode", "z"),
    ({"method": "umap", "n": 500}, "/latent_map", "not in the list of choices"),
]


def test_each_refused_input_is_one_log_line_and_no_traceback(url, capfd, caplog):
    client = gradio_client.Client(url, verbose=False)
    capfd.readouterr()  # what the launch printed
    caplog.clear()
    for kwargs, endpoint, said in BAD_CALLS:
        with pytest.raises(AppError, match=said):
            client.predict(**kwargs, api_name=endpoint)
    _, err = capfd.readouterr()  # the server's own output: Gradio prints a traceback there
    assert "Traceback" not in err, err[-2000:]
    refused = [r.getMessage() for r in caplog.records if r.name == "vae_explorer"]
    assert len(refused) == len(BAD_CALLS), refused
    for (_, _, said), line in zip(BAD_CALLS, refused, strict=True):
        assert line.startswith("refused input: ") and said in line and "\n" not in line
