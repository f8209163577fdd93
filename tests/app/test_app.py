"""The launched app through real gradio_client sessions (one Client = one browser session)."""

from __future__ import annotations

import json
import pickle
import time

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

from vae_explorer.checkpoint import load_checkpoint, shipped_checkpoints  # noqa: E402
from vae_explorer.session import DEFAULT_CHECKPOINT  # noqa: E402

TRAIN = {  # the Train tab's controls, as a script would send them
    "dataset": "digits",
    "arch": "mlp",
    "latent_dim": 2,
    "hidden_dim": 64,
    "likelihood": "bernoulli",
    "binarize": False,
    "conditional": False,
    "beta": 1.0,
    "kl_schedule": "constant",
    "warmup_epochs": 10,
    "free_bits": 0.0,
    "lr": 1e-3,
    "batch_size": 64,
    "epochs": 2,
    "grad_clip": 1.0,
    "seed": 0,
}


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _series(plot: dict, name: str) -> list[float]:
    fig = json.loads(plot["plot"])
    return next(t["y"] for t in fig["data"] if t.get("name") == name)


def test_a_session_starts_from_the_shipped_model(url):
    info = _client(url).predict(api_name="/model_info")
    assert info["dataset"] == "mnist-10k" and info["model_config"]["latent_dim"] == 2
    assert info["epoch"] > 0 and not info["training"]


def test_training_streams_falling_losses_and_separate_plots(url):
    c = _client(url)
    job = c.submit(**TRAIN, api_name="/train")
    final = job.result(timeout=300)
    updates = job.outputs()
    assert len(updates) >= 2  # a first frame (at once) and the final one, more on longer runs
    status, _diag, recon_plot, kl_plot = final[:4]
    assert "Finished" in status and "epoch 2" in status
    recon = _series(recon_plot, "per step")
    assert len(recon) == 2 * 23  # 1,437 images / 64 per step, two epochs
    assert np.mean(recon[-5:]) < np.mean(recon[:5]) - 3
    assert len(_series(recon_plot, "test (per epoch)")) == 2
    assert len(_series(kl_plot, "test (per epoch)")) == 2
    # The live latent map: the test codes after the last epoch, one trace per class, with the
    # prior's circles on the 2-D latent plane.
    live = json.loads(final[8]["plot"])
    assert sum(len(t["x"]) for t in live["data"]) == 360 and len(live["data"]) == 10
    assert "epoch 2 " in live["layout"]["title"]["text"]
    assert [sh["x1"] for sh in live["layout"]["shapes"]] == [1, 2]
    info = c.predict(api_name="/model_info")
    assert info["epoch"] == 2 and info["step"] == 46 and info["model_config"]["hidden_dim"] == 64


def test_a_hierarchical_model_trains_and_plots_each_level(url):
    c = _client(url)
    settings = {**TRAIN, "arch": "hierarchical", "bottom_latent_dim": 6, "free_bits": 0.5}
    final = c.predict(**settings, api_name="/train")
    status, _diag, _recon_plot, kl_plot = final[:4]
    assert "Finished" in status and "hierarchical" in status
    z1, z2 = _series(kl_plot, "z1 test (per epoch)"), _series(kl_plot, "z2 test (per epoch)")
    total = _series(kl_plot, "test (per epoch)")
    assert len(z1) == len(z2) == 2
    assert total == pytest.approx([a + b for a, b in zip(z1, z2, strict=True)], rel=1e-5)
    assert len(_series(kl_plot, "z1 smoothed")) == 2 * 23
    info = c.predict(api_name="/model_info")
    assert info["model_config"]["arch"] == "hierarchical" and info["model_config"]["bottom_latent_dim"] == 6
    # The map, decoding a click and sampling all work on the top level z2.
    a = _image(c.predict(x=-1.0, y=0.5, method="identity", n=500, api_name="/decode_point")[0])
    assert a.std() > 0
    bad = {**settings, "bottom_latent_dim": 0}
    with pytest.raises(Exception, match="Lower latent z₁ size"):
        c.predict(**bad, api_name="/train")


def test_a_plain_autoencoder_trains_from_the_train_tab(url):
    c = _client(url)
    final = c.predict(**{**TRAIN, "autoencoder": True, "epochs": 1}, api_name="/train")
    assert "an autoencoder has no ELBO" in final[0]
    assert set(_series(final[3], "per step")) == {0.0}  # no KL term at all
    assert c.predict(api_name="/model_info")["model_config"]["autoencoder"] is True
    with pytest.raises(Exception, match="autoencoder"):
        c.predict(**{**TRAIN, "autoencoder": True, "arch": "hierarchical"}, api_name="/train")


def test_stop_mid_run_leaves_a_usable_model(url):
    c = _client(url)
    job = c.submit(**{**TRAIN, "epochs": 150}, api_name="/train")
    deadline = time.time() + 60
    while len(job.outputs()) < 2 and time.time() < deadline:
        time.sleep(0.2)
    c.predict(api_name="/stop")
    final = job.result(timeout=120)
    assert "Stopped" in final[0]
    info = c.predict(api_name="/model_info")
    assert not info["training"] and 0 < info["step"] < 150 * 23
    grid = _image(c.predict(api_name="/decode", z_text="[0.5, -0.5]", label=None))
    assert grid.ndim == 2 and grid.std() > 0  # a real decode, not a blank
    # Continue picks up from there, with the optimizer state, and finishes the interrupted epoch
    # (the same batch size: its batches go on where the stop left them).
    done = c.predict(**{**TRAIN, "epochs": 1}, api_name="/continue_training")
    after = c.predict(api_name="/model_info")
    left = 23 - info["step"] % 23
    assert "Finished" in done[0] and after["step"] == info["step"] + left


def test_two_sessions_train_their_own_models(url):
    a, b, fresh = _client(url), _client(url), _client(url)
    shipped = fresh.predict(api_name="/model_info")["weights_sha256"]
    a.predict(**{**TRAIN, "epochs": 1, "seed": 1}, api_name="/train")
    ha = a.predict(api_name="/model_info")["weights_sha256"]
    b.predict(**{**TRAIN, "epochs": 1, "seed": 2, "hidden_dim": 32}, api_name="/train")
    info_b = b.predict(api_name="/model_info")
    assert len({ha, info_b["weights_sha256"], shipped}) == 3
    assert a.predict(api_name="/model_info")["weights_sha256"] == ha  # b's training did not touch a
    assert info_b["model_config"]["hidden_dim"] == 32
    assert fresh.predict(api_name="/model_info")["weights_sha256"] == shipped


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "less than minimum"),
        ({"epochs": 10**9}, "greater than maximum"),
        ({"lr": 0}, "Learning rate must be"),
        ({"lr": -1}, "Learning rate must be"),
        ({"lr": 1e308}, "Learning rate must be"),
        ({"lr": "abc"}, "Learning rate must be"),
        ({"seed": -3}, "Seed must be"),
        ({"grad_clip": -1}, "Gradient clip must be"),
        ({"batch_size": 5000}, "greater than maximum"),
        ({"arch": "transformer"}, "not in the list of choices"),
        ({"dataset": "imagenet"}, "not in the list"),
        ({"latent_dim": 2.5}, "Latent size must be a whole number"),
        ({"seed": None}, "Seed must be"),
        ({"beta": None}, ""),
    ],
)
def test_bad_training_values_get_an_error_and_the_server_stays_up(url, change, message):
    c = _client(url)
    before = c.predict(api_name="/model_info")["weights_sha256"]
    with pytest.raises(Exception, match=message):
        c.predict(**{**TRAIN, **change}, api_name="/train")
    assert c.predict(api_name="/model_info")["weights_sha256"] == before  # nothing lost


def test_checkpoints_in_and_out(url, tmp_path):
    c = _client(url)
    c.predict(**{**TRAIN, "epochs": 1, "seed": 5}, api_name="/train")
    mine = c.predict(api_name="/model_info")
    path = c.predict(api_name="/save_checkpoint")
    assert str(path).endswith(".safetensors")
    c.predict("digits-conditional", api_name="/load_checkpoint")
    assert c.predict(api_name="/model_info")["model_config"]["conditional"]
    c.predict(handle_file(path), api_name="/upload_checkpoint")
    back = c.predict(api_name="/model_info")
    assert back["weights_sha256"] == mine["weights_sha256"] and back["epoch"] == 1
    # A pickle with a payload, named like a checkpoint: refused, never run, model unchanged.
    sentinel = tmp_path / "pwned"
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(_Payload(sentinel)))
    with pytest.raises(Exception, match="pickle"):
        c.predict(handle_file(str(bad)), api_name="/upload_checkpoint")
    assert not sentinel.exists()
    assert c.predict(api_name="/model_info")["weights_sha256"] == mine["weights_sha256"]


def test_a_lecture_session_file_brings_back_the_model_and_the_settings(url):
    """A lecturer prepares a model and the controls at home, saves once, and on the day loads
    that one file in a fresh session: the model, every setting and lecture mode come back."""
    home, hall = _client(url), _client(url)
    prepared = {**TRAIN, "epochs": 1, "seed": 11, "beta": 2.5, "free_bits": 0.25, "kl_schedule": "linear"}
    home.predict(**prepared, api_name="/train")
    weights = home.predict(api_name="/model_info")["weights_sha256"]
    path = home.predict(lecture=True, **{**prepared, "epochs": 7}, api_name="/save_checkpoint")

    saved = load_checkpoint(path).session
    assert saved["lecture"] is True and saved["epochs"] == 7 and saved["beta"] == 2.5
    out = hall.predict(handle_file(path), api_name="/upload_checkpoint")
    names = [
        "dataset",
        "arch",
        "latent_dim",
        "hidden_dim",
        "likelihood",
        "gaussian_variance",
        "gaussian_std",
        "binarize",
        "conditional",
        "beta",
        "kl_schedule",
        "warmup_epochs",
        "cycles",
        "cycle_ratio",
        "free_bits",
        "lr",
        "batch_size",
        "epochs",
        "grad_clip",
        "seed",
        "bottom_latent_dim",
        "autoencoder",
    ]
    controls = dict(zip(names, out[9 : 9 + len(names)], strict=True))
    assert out[9 + len(names)] is True  # lecture mode
    assert controls["epochs"] == 7 and controls["beta"] == 2.5 and controls["kl_schedule"] == "linear"
    assert controls["free_bits"] == 0.25 and controls["seed"] == 11 and controls["hidden_dim"] == 64
    assert controls["autoencoder"] is False
    assert "session settings were restored" in out[0]
    assert hall.predict(api_name="/model_info")["weights_sha256"] == weights


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.sentinel,))


def test_sampling_is_seeded(url):
    c = _client(url)
    a = _image(c.predict(n=16, temperature=1.0, seed=3, label=None, api_name="/sample"))
    b = _image(c.predict(n=16, temperature=1.0, seed=3, label=None, api_name="/sample"))
    d = _image(c.predict(n=16, temperature=1.0, seed=4, label=None, api_name="/sample"))
    assert np.array_equal(a, b) and not np.array_equal(a, d)


@pytest.mark.parametrize(
    "z, message",
    [
        ("[1, 2, 3]", "must have 2 numbers"),
        ("abc", "list of 2 numbers"),
        ("[1e9, 0]", "within"),
        ('["x", 1]', "list of 2 numbers"),
    ],
)
def test_decode_rejects_bad_points(url, z, message):
    with pytest.raises(Exception, match=message):
        _client(url).predict(api_name="/decode", z_text=z, label=None)


def test_interpolate_returns_one_frame_per_step(url):
    c = _client(url)
    strip = _image(c.predict("[-2, 0]", "[2, 0]", 5, "slerp", api_name="/interpolate"))
    single = _image(c.predict(api_name="/decode", z_text="[-2, 0]", label=None))
    assert strip.shape[1] > 4 * strip.shape[0] and single.shape[0] == single.shape[1]


def test_a_cancelled_job_ends_training_like_a_closed_tab(url):
    c = _client(url)
    job = c.submit(**{**TRAIN, "epochs": 150}, api_name="/train")
    deadline = time.time() + 60
    while len(job.outputs()) < 2 and time.time() < deadline:
        time.sleep(0.2)
    job.cancel()
    deadline = time.time() + 20
    info = c.predict(api_name="/model_info")
    while info["training"] and time.time() < deadline:
        time.sleep(0.2)
        info = c.predict(api_name="/model_info")
    assert not info["training"], "training kept running after its job was cancelled"
    time.sleep(1.0)
    assert c.predict(api_name="/model_info")["step"] == info["step"]  # no runaway thread
    assert 0 < info["step"] < 150 * 23


@pytest.mark.parametrize("z", ["[" + "9" * 400 + ", 0]", "[" * 5000 + "]" * 5000, "[1" + ", 1" * 30000 + "]"])
def test_decode_survives_hostile_text(url, z):
    c = _client(url)
    with pytest.raises(Exception, match=r"z (must|is too long)"):
        c.predict(api_name="/decode", z_text=z, label=None)
    assert c.predict(api_name="/model_info")["dataset"] == "mnist-10k"


def test_a_queued_training_can_be_cancelled_before_it_starts(url):
    # One training runs at a time; a second waits in the queue. A script cancels its job (the
    # browser's Stop button does the same for a queued Start, through Gradio's /cancel).
    a, b = _client(url), _client(url)
    job_a = a.submit(**{**TRAIN, "epochs": 100}, api_name="/train")
    while len(job_a.outputs()) < 1:
        time.sleep(0.1)
    job_b = b.submit(**{**TRAIN, "epochs": 100}, api_name="/train")
    time.sleep(0.5)
    job_b.cancel()
    a.predict(api_name="/stop")
    job_a.result(timeout=60)
    time.sleep(1.5)
    info_b = b.predict(api_name="/model_info")
    shipped_epoch = load_checkpoint(shipped_checkpoints()[DEFAULT_CHECKPOINT]).run.epoch
    assert not info_b["training"] and info_b["epoch"] == shipped_epoch  # still the shipped model


def test_every_model_setting_reaches_the_core(url):
    c = _client(url)
    settings = {
        **TRAIN,
        "epochs": 1,
        "likelihood": "gaussian",
        "gaussian_variance": "learned",
        "gaussian_std": 0.2,
        "kl_schedule": "cyclical",
        "cycles": 2,
        "cycle_ratio": 0.5,
        "conditional": True,
        "latent_dim": 3,
    }
    c.predict(**settings, api_name="/train")
    cfg = c.predict(api_name="/model_info")["model_config"]
    assert (cfg["likelihood"], cfg["gaussian_variance"], cfg["gaussian_std"]) == ("gaussian", "learned", 0.2)
    assert cfg["conditional"] and cfg["latent_dim"] == 3 and cfg["num_classes"] == 10


def test_a_conditional_model_samples_the_asked_class(url):
    c = _client(url)
    c.predict("digits-conditional", api_name="/load_checkpoint")
    threes = _image(c.predict(n=8, temperature=1.0, seed=0, label="3", api_name="/sample"))
    mixed = _image(c.predict(n=8, temperature=1.0, seed=0, label="all", api_name="/sample"))
    assert not np.array_equal(threes, mixed)
    with pytest.raises(Exception, match=r"not in the list of choices|Class label"):
        c.predict(n=8, temperature=1.0, seed=0, label="12", api_name="/sample")


def test_the_readme_client_example_runs_as_written(url):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "gradio_client" in b]
    code = code.replace("http://127.0.0.1:7860/", url)
    printed = []
    exec(code, {"print": printed.append})
    assert printed and printed[0]["epoch"] == 5 and printed[0]["dataset"] == "digits"


def test_the_latent_map_and_decoding_a_point_of_it(url):
    c = _client(url)
    method, value = c.predict("identity", 2000, api_name="/latent_map")
    shown = json.loads(value)
    assert method["value"] == "identity" and len(shown["points"]) == 2000 and len(shown["classes"]) == 10
    x0, x1, y0, y1 = shown["bounds"]
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y, _ in shown["points"])
    a = c.predict(x=-1.0, y=0.5, method="identity", n=2000, api_name="/decode_point")
    b = c.predict(x=1.5, y=-1.0, method="identity", n=2000, api_name="/decode_point")
    assert not np.array_equal(_image(a[0]), _image(b[0]))
    assert a[1] == "z = [-1.000, 0.500]"
    # The identity map's decode equals /decode of the same z.
    direct = _image(c.predict(z_text="[-1.0, 0.5]", label=None, api_name="/decode"))
    assert np.array_equal(_image(a[0]), direct)


def test_pca_click_on_a_point_decodes_its_mean(url):
    from vae_explorer.latent import project
    from vae_explorer.session import Workspace

    c = _client(url)
    settings = {**TRAIN, "epochs": 1, "latent_dim": 5}
    c.predict(**settings, api_name="/train")
    path = c.predict(api_name="/save_checkpoint")
    ws = Workspace.from_shipped()
    ws.load(path)
    proj, _ = ws.projection("pca", 2000)
    x, y = proj.coords[7].tolist()
    z = proj.to_latent([[x, y]])[0]
    # The exact PCA inverse lands on the plane: re-projecting gives the clicked point back.
    assert np.allclose(project(proj.mu, "pca").coords[7], [x, y], atol=1e-4)
    got = c.predict(x=x, y=y, method="pca", n=2000, api_name="/decode_point")
    assert got[1] == "z = [" + ", ".join(f"{v:.3f}" for v in z) + "]"
    with pytest.raises(Exception, match="identity map needs a 2-D latent"):
        c.predict(x=0, y=0, method="identity", n=2000, api_name="/decode_point")


@pytest.mark.parametrize("x, y", [(1e7, 0.0), (0.0, -1e9), ("abc", 0.0)])
def test_decode_point_rejects_far_or_bad_coordinates(url, x, y):
    with pytest.raises(Exception, match=r"(x|y) must be a number"):
        _client(url).predict(x=x, y=y, method="identity", n=2000, api_name="/decode_point")


def test_interpolation_starts_and_ends_at_the_two_reconstructions(url):
    from vae_explorer.generate import reconstruct
    from vae_explorer.session import Workspace
    from vae_explorer.ui.common import display

    c = _client(url)
    out = c.predict("test images", "3", 2, "7", 0, "slerp", "hold A's", 4, 0.0, api_name="/interp_strip")
    _thumb_a, _thumb_b, strip, frame = (_image(p) for p in out)
    ws = Workspace.from_shipped()
    ia, ib = ws.class_indices(3)[2], ws.class_indices(7)[0]
    rec = reconstruct(ws.model, ws.data.x_test[[ia, ib]])
    expected = display(rec, nrow=2)  # two frames with the strip's scale and padding
    w = expected.shape[1] // 2
    assert np.array_equal(strip[:, :w], expected[:, :w])  # t = 0 is A's reconstruction
    assert np.array_equal(strip[:, -w:], expected[:, -w:])  # t = 1 is B's
    last = _image(
        c.predict("test images", "3", 2, "7", 0, "slerp", "hold A's", 1.0, api_name="/interp_frame")
    )
    first = frame
    assert not np.array_equal(first, last)
    with pytest.raises(Exception, match="Click two places"):
        _client(url).predict(
            "last two map clicks", "3", 0, "7", 0, "linear", "hold A's", 4, 0.5, api_name="/interp_strip"
        )


def test_traversal_lists_dimensions_by_kl_and_one_row_each(url):
    import re

    c = _client(url)
    grid_all, note = c.predict("all", 3.0, 7, api_name="/traverse")
    kls = [float(v) for v in re.findall(r"\((\d+\.\d+) nats\)", note)]
    assert len(kls) == 2 and kls == sorted(kls, reverse=True)
    one, _ = c.predict("z1", 3.0, 7, api_name="/traverse")
    full, single = _image(grid_all), _image(one)
    assert full.shape[1] == single.shape[1] and full.shape[0] > 1.8 * single.shape[0]
    # Frames along an active dimension differ from each other.
    w = single.shape[1] // 7
    assert not np.array_equal(single[:, :w], single[:, -w:])
    with pytest.raises(Exception, match="Dimension must be"):
        c.predict("z9", 3.0, 7, api_name="/traverse")


def test_conditional_all_classes_gives_one_row_per_class(url):
    c = _client(url)
    c.predict("digits-conditional", api_name="/load_checkpoint")
    grid = _image(c.predict(n=40, temperature=1.0, seed=1, label="all", api_name="/sample"))
    single = _image(c.predict(n=4, temperature=1.0, seed=1, label="3", api_name="/sample"))
    # 10 rows of 4 (the same z down each column) against one row of 4 of class 3.
    assert grid.shape[1] == single.shape[1] and grid.shape[0] > 9 * single.shape[0] * 0.95


def test_encoding_an_uploaded_image_marks_it_on_the_map(url, tmp_path):
    from PIL import ImageDraw

    c = _client(url)
    im = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(im).ellipse((30, 15, 90, 105), outline=0, width=12)
    path = tmp_path / "zero.png"
    im.save(path)
    value, pair, text = c.predict("identity", 2000, handle_file(str(path)), api_name="/encode_image")
    marker = json.loads(value)["marker"]
    mu = [float(v) for v in text.split("μ = [")[1].rstrip("]").split(", ")]
    assert np.allclose(marker, mu, atol=1e-3)  # identity map: the marker is μ itself
    assert _image(pair).shape[1] > 1.8 * _image(pair).shape[0]  # image and reconstruction side by side
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(Exception, match="not an image that can be read"):
        c.predict("identity", 2000, handle_file(str(bad)), api_name="/encode_image")


def test_a_conditional_interpolation_can_blend_the_labels(url):
    c = _client(url)
    c.predict("digits-conditional", api_name="/load_checkpoint")
    args = ("test images", "3", 0, "7", 0, "linear")
    held = c.predict(*args, "hold A's", 5, 1.0, api_name="/interp_strip")
    blended = c.predict(*args, "A to B", 5, 1.0, api_name="/interp_strip")
    s_held, s_blend = _image(held[2]), _image(blended[2])
    w = s_held.shape[1] // 5
    assert np.array_equal(s_held[:, :w], s_blend[:, :w])  # t = 0: both decode with A's label
    assert not np.array_equal(s_held[:, -w:], s_blend[:, -w:])  # t = 1: B's label vs A's


def test_tsne_map_click_on_a_point_decodes_that_points_mean(url):
    from vae_explorer.evaluate import encode_all
    from vae_explorer.session import Workspace

    c = _client(url)
    _, value = c.predict("tsne", 2000, api_name="/latent_map")
    x, y, _ = json.loads(value)["points"][11]
    _, text = c.predict(x=x, y=y, method="tsne", n=2000, api_name="/decode_point")
    ws = Workspace.from_shipped()
    mu = encode_all(ws.model, ws.data.x_test[11:12]).mean[0]
    got = [float(v) for v in text.split("[")[1].rstrip("]").split(", ")]
    assert np.allclose(got, mu.numpy(), atol=2e-3)  # the map's 4-decimal rounding, then the exact hit


def test_map_clicks_with_odd_payloads_and_conditional_labels(url):
    import gradio as gr

    from vae_explorer.session import Workspace
    from vae_explorer.ui import latent_tab

    ws = Workspace.from_shipped("digits-conditional")
    for payload in (5, "xy", None, [1, 2], {}, {"x": [1]}):
        with pytest.raises(gr.Error):
            latent_tab.on_click(ws, None, "identity", 2000, gr.EventData(None, payload))
    proj, labels = ws.projection("identity", 2000)
    i = int(np.nonzero(labels.numpy() == 7)[0][0])
    x, y = proj.coords[i].tolist()
    _, _, text, _ = latent_tab.on_click(ws, None, "identity", 2000, gr.EventData(None, {"x": x, "y": y}))
    assert "decoded as class 7" in text
    c = _client(url)
    _, note = c.predict(" ", 3.0, 5, api_name="/traverse")  # blank means all dimensions
    assert note.startswith("Rows, top to bottom: z")


def test_the_readme_collapse_demo_collapses_and_its_fix_does_not(url):
    c = _client(url)
    # The lab's collapse preset, by hand on the Train tab: mnist-10k, β = 30 from the first step.
    collapse = {
        **TRAIN, "dataset": "mnist-10k", "latent_dim": 10, "hidden_dim": 256, "beta": 30.0,
        "epochs": 6, "batch_size": 128,
    }  # fmt: skip
    out = c.predict(**collapse, api_name="/train")
    assert "Posterior collapse" in out[1]
    fixed = {**collapse, "kl_schedule": "linear", "warmup_epochs": 3, "free_bits": 1.0}
    out = c.predict(**fixed, api_name="/train")
    assert "Posterior collapse" not in out[1]
    assert c.predict(api_name="/model_info")["active_units"] == 10


def test_the_failure_lab_shows_the_failure_then_the_fix(url):
    c = _client(url)
    job = c.submit("collapse", api_name="/lab_run")
    final = job.result(timeout=300)
    fail_verdict, _fail_plot, fail_recon, _fail_samples, fix_verdict, _fix_plot, fix_recon, _ = final
    assert "Failure: the failure shows" in fail_verdict and "active units 0/10" in fail_verdict
    assert "Fix: no failure detected" in fix_verdict and "active units 10/10" in fix_verdict
    assert _image(fail_recon).shape == _image(fix_recon).shape
    with pytest.raises(Exception, match=r"not in the list of choices|Preset must be"):
        c.predict("boredom", api_name="/lab_run")


def test_the_traversal_reports_what_each_dimension_knows_about_the_class(url):
    import re

    c = _client(url)
    _, note = c.predict("all", 3.0, 5, api_name="/traverse")
    h = float(re.search(r"H\(y\) = ([\d.]+)", note).group(1))
    mis = [float(v) for v in re.findall(r"z\d (\d+\.\d+)(?=[,.])", note.split("in nats")[1])]
    mig = float(re.search(r"MIG\): ([\d.]+)", note).group(1))
    assert abs(h - np.log(10)) < 0.05 and len(mis) == 2 and all(0 < m <= h for m in mis) and 0 <= mig <= 1


def test_the_decoded_manifold_is_a_k_by_k_grid_also_for_a_conditional_model(url):
    c = _client(url)
    plain = _image(c.predict(method="identity", n=2000, resolution=6, api_name="/manifold"))
    c.predict("mnist-conditional", api_name="/load_checkpoint")
    cond = _image(c.predict(method="identity", n=2000, resolution=6, api_name="/manifold"))
    assert plain.shape == cond.shape and abs(plain.shape[0] - plain.shape[1]) <= 1
    assert not np.array_equal(plain, cond)
