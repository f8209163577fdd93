"""Edge cases of data and training that the other tests leave out: more malformed .npz files,
a data set of one image, batches larger than the data, an absurd learning rate or β."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch

from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import ImageDataset, load_dataset, load_npz
from vae_explorer.limits import Limits
from vae_explorer.records import EpochRecord, StepRecord, StopRecord
from vae_explorer.session import Workspace
from vae_explorer.trainer import Trainer

U8 = np.uint8
_X = np.zeros((4, 6, 6), dtype=U8)
_Y = np.array([0, 1, 2, 1])

NPZ_BAD = {
    "empty x_test": ({"x_train": _X, "x_test": np.zeros((0, 6, 6), U8)}, r"x_test is empty"),
    "zero-width images": ({"x_train": np.zeros((4, 0), U8), "x_test": _X}, r"x_train is empty"),
    "0-d array": ({"x_train": np.array(3), "x_test": _X}, r"x_train must have shape"),
    "complex images": ({"x_train": np.zeros((4, 6, 6), np.complex64), "x_test": _X}, r"has dtype complex64"),
    "NaN among valid pixels": (
        {"x_train": np.where(np.eye(6)[None] > 0, np.nan, 0.5).repeat(4, 0), "x_test": _X},
        r"x_train contains NaN",
    ),
    "float images as 0-255": ({"x_train": np.full((4, 6, 6), 255.0), "x_test": _X}, r"use uint8 for 0-255"),
    "uint16 above 255": ({"x_train": np.full((4, 6, 6), 4000, np.uint16), "x_test": _X}, r"must be in 0-255"),
    "label too large": (
        {"x_train": _X, "x_test": _X, "y_train": _Y, "y_test": np.array([0, 1, 2, 5000])},
        r"labels must be between 0 and 999",
    ),
    "boolean labels": (
        {"x_train": _X, "x_test": _X, "y_train": _Y > 0, "y_test": _Y},
        r"y_train must hold whole-number class labels",
    ),
    "text labels": (
        {"x_train": _X, "x_test": _X, "y_train": np.array(["a"] * 4), "y_test": _Y},
        r"whole-number class labels",
    ),
    "y_test shorter than x_test": (
        {"x_train": _X, "x_test": _X, "y_train": _Y, "y_test": _Y[:2]},
        r"y_test must have shape \(4,\) to match its images, got \(2,\)",
    ),
    "only y_test": ({"x_train": _X, "x_test": _X, "y_test": _Y}, r"give both y_train and y_test"),
    "misspelled key": ({"x_train": _X, "X_test": _X}, r"lacks x_test; it has x_train, X_test"),
}


@pytest.mark.parametrize("case", list(NPZ_BAD), ids=list(NPZ_BAD))
def test_more_bad_npz_files_are_clear_value_errors(case, tmp_path):
    arrays, pattern = NPZ_BAD[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=pattern):
        load_npz(path)


def test_a_corrupt_compressed_npz_is_a_value_error(tmp_path):
    """np.savez_compressed members are deflate streams; damage inside one raised zlib.error,
    which escaped as a traceback."""
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    images = rng.integers(0, 256, (60, 8, 8), dtype=U8)
    np.savez_compressed(good, x_train=images[:50], x_test=images[50:])
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("x_train.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray(good.read_bytes())
    data[start + 10 : start + 40] = bytes(range(30))  # inside the deflate stream of x_train
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        load_npz(bad)
    assert load_npz(good).x_train.shape == (50, 1, 8, 8)


def test_a_corrupt_gz_inside_the_data_folder_is_a_value_error(tmp_path):
    import gzip

    from vae_explorer.data import IDX_FILES

    payload = gzip.compress(bytes(range(256)) * 200)
    damaged = payload[:40] + bytes(200) + payload[240:]  # deflate data broken, header intact
    for name in IDX_FILES:
        (tmp_path / f"{name}.gz").write_bytes(damaged)
    with pytest.raises(ValueError, match=r"could not unpack the mnist files"):
        load_dataset("mnist", tmp_path, download=False)


# ----------------------------------------------------------------------------- training edge cases


def _one_image_data() -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, 8, 8), generator=g)
    y = torch.zeros(1, dtype=torch.long)
    return ImageDataset("one", x, y, x.clone(), y.clone(), ["0"])


def _finite_record(rec: EpochRecord) -> bool:
    values = [v for v in rec.to_dict().values() if isinstance(v, float)]
    values += [v for v in rec.kl_per_dim]
    return all(math.isfinite(v) for v in values)


def test_a_data_set_of_one_image_trains_and_reports_finite_numbers():
    data = _one_image_data()
    model = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8, num_classes=1))
    t = Trainer(model, data, TrainConfig(epochs=3, batch_size=1))
    epochs = [r for r in t.run() if isinstance(r, EpochRecord)]
    assert [e.step for e in epochs] == [1, 2, 3]
    assert all(_finite_record(e) for e in epochs)
    assert epochs[-1].active_units == 0  # one code cannot vary: no unit counts as active


def test_a_one_image_npz_loads_and_trains(tmp_path):
    path = tmp_path / "one.npz"
    rng = np.random.default_rng(1)
    x_test = rng.random((1, 16))  # N×D rows; not flat, so the edge-energy ratio is defined
    np.savez(path, x_train=rng.integers(0, 256, (1, 4, 4), dtype=U8), x_test=x_test, y_train=[3], y_test=[0])
    data = load_npz(path)
    assert data.x_train.shape == (1, 1, 4, 4) and data.class_names == ["0", "1", "2", "3"]
    model = build_model(ModelConfig(input_shape=(1, 4, 4), latent_dim=1, hidden_dim=4, num_classes=4))
    recs = list(Trainer(model, data, TrainConfig(epochs=1, batch_size=1)).run())
    assert isinstance(recs[-1], EpochRecord) and _finite_record(recs[-1])


def test_a_batch_larger_than_the_data_is_refused_and_the_session_trains_again():
    ws = Workspace.from_shipped(limits=Limits(max_train_images=50), device=torch.device("cpu"))
    before = {k: v.clone() for k, v in ws.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"batch size 64 is larger than the 50 training images"):
        list(ws.train(TrainConfig(epochs=1, batch_size=64)))
    assert not ws.is_training
    assert all(torch.equal(v, before[k]) for k, v in ws.model.state_dict().items())
    recs = list(ws.train(TrainConfig(epochs=1, batch_size=50)))
    assert isinstance(recs[-1], EpochRecord) and recs[-1].step == ws.run.step


@pytest.mark.parametrize(
    "lr, beta",
    [(10.0, 1.0), (1e-3, 1e6), (10.0, 1e6), (1e6, 0.0)],
    ids=["lr 10", "beta 1e6", "both", "lr 1e6, beta 0"],
)
def test_absurd_settings_end_finite_either_trained_or_rolled_back(lr, beta):
    """With the defaults (log-variance clamped, gradients clipped to 1) an absurd learning rate
    or β either trains to finite weights and records, or stops with a roll-back and a reason."""
    data = load_dataset("digits")
    model = build_model(ModelConfig(input_shape=data.image_shape, latent_dim=2, hidden_dim=32))
    t = Trainer(model, data, TrainConfig(epochs=1, batch_size=128, lr=lr, beta=beta))
    records = list(t.run())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    last = records[-1]
    if isinstance(last, StopRecord):
        assert last.rolled_back and "learning rate" in last.reason
    else:
        assert isinstance(last, EpochRecord) and _finite_record(last)
        assert all(math.isfinite(r.loss) for r in records if isinstance(r, StepRecord) and not r.skipped)


# ----------------------------------------------------------------------------- images


def _encoded(im, fmt: str, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A 1×1 PNG whose header claims width × height pixels (a few hundred bytes on disk)."""
    import struct
    import zlib

    from PIL import Image

    small = _encoded(Image.new("L", (1, 1), 0), "PNG")
    i = small.index(b"IHDR")
    chunk = b"IHDR" + struct.pack(">II", width, height) + small[i + 12 : i + 17]
    crc = struct.pack(">I", zlib.crc32(chunk))
    return small[: i - 4] + struct.pack(">I", 13) + chunk + crc + small[i + 21 :]


def test_image_sizes_at_the_extremes():
    from PIL import Image

    from vae_explorer.images import MAX_PIXELS, load_image

    with pytest.raises(ValueError, match=r"8000×8000 pixels; at most 40,000,000"):
        load_image(_png_header_claiming(8000, 8000), (1, 8, 8))  # refused from its header
    assert MAX_PIXELS < 8000 * 8000
    for size in [(1, 10_000), (10_000, 1), (1, 1), (2500, 2000)]:
        x = load_image(_encoded(Image.new("L", size, 200), "PNG"), (1, 8, 8))
        assert x.shape == (1, 1, 8, 8) and torch.isfinite(x).all()


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_truncated_files_of_every_accepted_format_are_value_errors(fmt):
    from PIL import Image

    from vae_explorer.images import load_image

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (64, 64), dtype=U8))
    data = _encoded(im, fmt)
    assert load_image(data, (1, 8, 8)).shape == (1, 1, 8, 8)  # whole, it loads
    with pytest.raises(ValueError, match=r"not an image that can be read"):
        load_image(data[: len(data) // 2], (1, 8, 8))


def test_a_16_bit_png_keeps_its_grey_levels_in_order():
    from PIL import Image

    from vae_explorer.images import load_image

    ramp = np.tile(np.linspace(0, 60000, 8).astype(np.uint16), (8, 1))
    data = _encoded(Image.fromarray(ramp), "PNG")
    assert Image.open(__import__("io").BytesIO(data)).mode.startswith("I")
    row = load_image(data, (1, 8, 8))[0, 0, 4]
    assert torch.all(row[1:] >= row[:-1] - 1e-6) and row[-1] > row[0]


# ----------------------------------------------------------------------------- checkpoints


def _craft(tmp_path, mutate, name="bad.safetensors"):
    """A valid digits checkpoint with its tensors changed by ``mutate``."""
    import json
    import struct

    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import RunInfo

    good = save_checkpoint(
        tmp_path / "good.safetensors",
        build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16)),
        RunInfo(dataset="digits"),
    )
    data = good.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    tensors = st_load(data)
    meta = mutate(tensors, meta) or meta
    path = tmp_path / name
    path.write_bytes(st_save(tensors, metadata=meta))
    return path


def _fill(value):
    def mutate(tensors, meta):
        for t in tensors.values():
            t.fill_(value)

    return mutate


CRAFTED = {
    "BOOL tensor": (lambda t, m: t.update({"encoder.0.weight": t["encoder.0.weight"] > 0}), r"got 'BOOL'"),
    "0-dim tensor": (lambda t, m: t.update({"decoder.0.bias": torch.tensor(0.5)}), r"shape \[\], expected"),
    "empty tensor": (lambda t, m: t.update({"encoder.0.bias": torch.zeros(0)}), r"has shape \[0\], expected"),
}


@pytest.mark.parametrize("case", list(CRAFTED), ids=list(CRAFTED))
def test_more_malformed_tensors_are_clear_value_errors(case, tmp_path):
    from vae_explorer.checkpoint import load_checkpoint

    mutate, pattern = CRAFTED[case]
    with pytest.raises(ValueError, match=pattern):
        load_checkpoint(_craft(tmp_path, mutate))


def test_weights_of_1e30_are_refused_on_load_and_the_model_stays(tmp_path):
    """Finite but absurd weights once loaded, and then every map showed Infinity, the traversal
    'inf nats' and the decoded plane failed with a bare error."""
    ws = Workspace.from_shipped(device=torch.device("cpu"))
    before = {k: v.clone() for k, v in ws.model.state_dict().items()}
    for value in (1e30, -1e15):
        with pytest.raises(ValueError, match=r"infinite, NaN or absurdly large values on digits"):
            ws.load(_craft(tmp_path, _fill(value)))
    assert all(torch.equal(v, before[k]) for k, v in ws.model.state_dict().items())
    ws.load(_craft(tmp_path, lambda t, m: None, "fine.safetensors"))  # the same file, unharmed, loads
    assert ws.model.config.hidden_dim == 16


def test_a_model_from_another_data_set_is_refused_with_the_reason(tmp_path):
    import json

    def claims(dataset):
        def mutate(tensors, meta):
            run = json.loads(meta["run"])
            run["dataset"] = dataset
            return {**meta, "run": json.dumps(run)}

        return mutate

    from vae_explorer.data import availability

    ws = Workspace.from_shipped(device=torch.device("cpu"))
    if availability("fashion-mnist")[0]:
        with pytest.raises(ValueError, match=r"shape \(1, 8, 8\), but fashion-mnist has \(1, 28, 28\)"):
            ws.load(_craft(tmp_path, claims("fashion-mnist")))
    from vae_explorer.checkpoint import save_checkpoint
    from vae_explorer.config import RunInfo

    three = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16, conditional=True, num_classes=3)
    path = save_checkpoint(tmp_path / "three.safetensors", build_model(three), RunInfo(dataset="digits"))
    with pytest.raises(ValueError, match=r"this conditional model has 3 classes; digits has 10"):
        ws.load(path)


def test_a_huge_string_in_the_metadata_gives_a_short_message_in_the_app(tmp_path):
    import json

    gr = pytest.importorskip("gradio")
    from vae_explorer.ui.common import guard

    def huge(tensors, meta):
        cfg = json.loads(meta["model_config"])
        cfg["latent_dim"] = "9" * 1_000_000
        return {**meta, "model_config": json.dumps(cfg)}

    ws = Workspace.from_shipped(device=torch.device("cpu"))
    with pytest.raises(
        gr.Error, match=r"bad\.safetensors has invalid metadata: latent_dim must be a whole number"
    ) as info:
        guard(lambda: ws.load(_craft(tmp_path, huge)))  # what the upload handler does
    message = info.value.message
    assert message.startswith("bad.safetensors has invalid metadata: latent_dim must be a whole number")
    assert len(message) <= 300


@pytest.mark.parametrize(
    "raw, message",
    [
        ("two hours", "must be a number, got 'two hours'"),
        ("nan", "must be at least 1"),
        ("0", "must be at least 1"),
    ],
)
def test_a_bad_session_variable_names_itself(monkeypatch, raw, message):
    pytest.importorskip("gradio")
    from vae_explorer.ui.common import _env_number

    monkeypatch.setenv("VAE_EXPLORER_SESSION_TTL", raw)
    with pytest.raises(ValueError, match=rf"VAE_EXPLORER_SESSION_TTL {message}"):
        _env_number("VAE_EXPLORER_SESSION_TTL", 7200, 1.0)
    monkeypatch.setenv("VAE_EXPLORER_SESSION_TTL", " ")
    assert _env_number("VAE_EXPLORER_SESSION_TTL", 7200, 1.0) == 7200.0
    monkeypatch.setenv("VAE_EXPLORER_TRAIN_CONCURRENCY", "1.5")
    with pytest.raises(ValueError, match=r"VAE_EXPLORER_TRAIN_CONCURRENCY must be a number"):
        _env_number("VAE_EXPLORER_TRAIN_CONCURRENCY", 1, 1, int)
