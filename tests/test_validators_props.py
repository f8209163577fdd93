"""Property-based tests of every validator that stands between untrusted input and the core:
whatever comes in, the result is a valid object (its invariants hold) or a ValueError with a
message (gr.Error in the UI) — never another exception."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from vae_explorer import config as cfg_mod
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_npz
from vae_explorer.images import load_image
from vae_explorer.limits import Limits

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Ints beyond the float range break float(); they are tested on their own below.
FLOAT_RANGE_INT = 2**1000

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-FLOAT_RANGE_INT, max_value=FLOAT_RANGE_INT),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=8),
    st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(max_denominator=10**6),
    st.complex_numbers(max_magnitude=1e6),
    st.sampled_from(["nan", "inf", "-1e999", "1e308", " 7 ", "0x10", "1_000", "３"]),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.text(max_size=8)
    | st.integers(min_value=-FLOAT_RANGE_INT, max_value=FLOAT_RANGE_INT),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8,
)


def _value_error(fn):
    """fn()'s result, or None when it raised ValueError with a message; any other exception fails."""
    try:
        return fn()
    except ValueError as err:
        assert str(err).strip(), "a ValueError without a message"
        return None


# ----------------------------------------------------------------------------- ModelConfig

VALID_MODEL = {
    "input_shape": st.one_of(
        st.tuples(st.integers(1, 4), st.integers(1, 128), st.integers(1, 128)),
        st.lists(st.sampled_from([1, 8, 28, 8.0, 28.0, 0, -1, 3.5, True]), min_size=2, max_size=4),
    ),
    "arch": st.sampled_from(cfg_mod.ARCHS),
    "latent_dim": st.integers(0, cfg_mod.MAX_LATENT_DIM + 1),
    "bottom_latent_dim": st.integers(0, cfg_mod.MAX_LATENT_DIM + 1),
    "hidden_dim": st.integers(0, cfg_mod.MAX_HIDDEN_DIM + 1),
    "likelihood": st.sampled_from(cfg_mod.LIKELIHOODS),
    "gaussian_variance": st.sampled_from(cfg_mod.GAUSSIAN_VARIANCES),
    "gaussian_std": st.floats(-1, 11),
    "conditional": st.booleans(),
    "num_classes": st.integers(0, cfg_mod.MAX_CLASSES + 1),
    "logvar_min": st.floats(-31, 1),
    "logvar_max": st.floats(-1, 31),
    "clamp_logvar": st.booleans(),
}


def _kwargs(cls, valid: dict):
    """Any subset of the config's fields, each a plausible value or anything at all."""
    fields = dataclasses.fields(cls)
    optional = {f.name: st.one_of(valid.get(f.name, st.just(f.default)), ANYTHING) for f in fields}
    return st.fixed_dictionaries({}, optional=optional)


def _check_types_like_defaults(obj) -> None:
    """Every field holds the type of its default: an int stays an int (never a bool or a float)."""
    for f in dataclasses.fields(obj):
        value, default = getattr(obj, f.name), f.default
        if default is dataclasses.MISSING:
            continue
        assert type(value) is type(default), (f.name, value)
        if isinstance(value, float):
            assert math.isfinite(value), (f.name, value)


def _check_model_config(c: ModelConfig) -> None:
    _check_types_like_defaults(c)
    ch, h, w = c.input_shape
    assert all(type(v) is int for v in c.input_shape)
    assert 1 <= ch <= cfg_mod.MAX_CHANNELS and h >= 1 and w >= 1 and h * w <= cfg_mod.MAX_PIXELS
    assert c.arch in cfg_mod.ARCHS and c.likelihood in cfg_mod.LIKELIHOODS
    assert c.gaussian_variance in cfg_mod.GAUSSIAN_VARIANCES
    if c.arch == "conv":
        assert h % 4 == 0 and w % 4 == 0
    assert 1 <= c.latent_dim <= cfg_mod.MAX_LATENT_DIM and 1 <= c.hidden_dim <= cfg_mod.MAX_HIDDEN_DIM
    assert 1 <= c.num_classes <= cfg_mod.MAX_CLASSES
    assert 0 < c.gaussian_std <= 10 and -30 <= c.logvar_min <= 0 <= c.logvar_max <= 30
    # A checkpoint stores the config as JSON: it comes back equal.
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@SETTINGS
@given(_kwargs(ModelConfig, VALID_MODEL))
@example({"latent_dim": "1e9"})
@example({"input_shape": (1, 100_000, 100_000)})
@example({"gaussian_std": float("nan"), "logvar_min": float("-inf")})
@example({"latent_dim": 2.0, "input_shape": [1.0, 8.0, 8.0]})
def test_model_config_is_valid_or_a_value_error(kwargs):
    c = _value_error(lambda: ModelConfig(**kwargs))
    if c is not None:
        _check_model_config(c)


@SETTINGS
@given(
    st.one_of(JSON, st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(ModelConfig)]), JSON))
)
def test_model_config_from_any_json_is_valid_or_a_value_error(data):
    c = _value_error(lambda: ModelConfig.from_dict(data))
    if c is not None:
        _check_model_config(c)


# ----------------------------------------------------------------------------- TrainConfig

VALID_TRAIN = {
    "epochs": st.integers(0, 100_001),
    "batch_size": st.integers(0, 70_000),
    "lr": st.floats(0, 2e6),
    "beta": st.floats(-1, 2e6),
    "kl_schedule": st.sampled_from(cfg_mod.KL_SCHEDULES),
    "warmup_epochs": st.floats(-1, 1e5 + 1),
    "cycles": st.integers(0, 10_001),
    "cycle_ratio": st.floats(-0.1, 1.1),
    "free_bits": st.floats(-1, 101),
    "grad_clip": st.floats(-1, 2e6),
    "binarize": st.booleans(),
    "seed": st.integers(-1, 2**31),
    "max_bad_steps": st.integers(0, 1001),
}


def _check_train_config(t: TrainConfig) -> None:
    _check_types_like_defaults(t)
    assert 1 <= t.epochs <= 100_000 and 1 <= t.batch_size <= 65_536 and 0 <= t.seed <= 2**31 - 1
    assert 0 < t.lr <= 1e6 and 0 <= t.beta <= 1e6 and 0 < t.cycle_ratio <= 1
    assert t.free_bits >= 0 and t.grad_clip >= 0 and t.warmup_epochs >= 0 and t.cycles >= 1
    assert t.kl_schedule in cfg_mod.KL_SCHEDULES and 1 <= t.max_bad_steps <= 1000
    assert TrainConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t


@SETTINGS
@given(_kwargs(TrainConfig, VALID_TRAIN))
@example({"lr": float("nan")})
@example({"epochs": 2.5, "batch_size": True})
@example({"seed": 2**63, "lr": 1e308})
def test_train_config_is_valid_or_a_value_error(kwargs):
    t = _value_error(lambda: TrainConfig(**kwargs))
    if t is not None:
        _check_train_config(t)


@SETTINGS
@given(
    st.one_of(JSON, st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(TrainConfig)]), JSON))
)
def test_train_config_from_any_json_is_valid_or_a_value_error(data):
    t = _value_error(lambda: TrainConfig.from_dict(data))
    if t is not None:
        _check_train_config(t)


@pytest.mark.parametrize(
    "make",
    [lambda: TrainConfig(lr=10**400), lambda: ModelConfig(gaussian_std=10**400)],
    ids=["TrainConfig lr", "ModelConfig gaussian_std"],
)
def test_an_int_beyond_the_float_range_is_a_value_error(make):
    with pytest.raises(ValueError, match=r"must be a finite number; this whole number is too large"):
        make()


# ----------------------------------------------------------------------------- UI parsers

gr = pytest.importorskip("gradio")
from vae_explorer.ui import common  # noqa: E402


def _gr_error(fn, name: str | None = None):
    try:
        return fn()
    except gr.Error as err:
        assert err.message.strip().endswith(".")
        if name is not None:
            assert err.message.startswith(name), err.message
        return None


BOUNDS = st.tuples(st.integers(-(2**70), 2**70), st.integers(0, 2**70)).map(lambda t: (t[0], t[0] + t[1]))


@SETTINGS
@given(ANYTHING | st.integers(), BOUNDS)
@example(2**53 + 1, (0, 2**60))
@example(3.0, (0, 5))
@example("7", (0, 10))
@example(True, (0, 1))
def test_as_int_returns_an_int_in_range_or_a_gr_error(value, bounds):
    lo, hi = bounds
    out = _gr_error(lambda: common.as_int(value, "Seed", lo, hi), "Seed")
    if out is not None:
        assert type(out) is int and lo <= out <= hi
        if isinstance(value, int):
            assert out == value and not isinstance(value, bool)
        elif isinstance(value, float):
            assert out == value
    elif isinstance(value, int) and not isinstance(value, bool):
        assert not lo <= value <= hi  # a whole number in range is never refused


@SETTINGS
@given(ANYTHING, st.floats(-1e300, 1e300), st.floats(0, 1e300))
@example(float("nan"), 0.0, 1.0)
@example("1e999", 0.0, 1.0)
def test_as_float_returns_a_finite_float_in_range_or_a_gr_error(value, lo, width):
    hi = lo + width
    assume(math.isfinite(hi))
    out = _gr_error(lambda: common.as_float(value, "Learning rate", lo, hi), "Learning rate")
    if out is not None:
        assert type(out) is float and math.isfinite(out) and lo <= out <= hi
    elif isinstance(value, float) and math.isfinite(value):
        assert not lo <= value <= hi


@SETTINGS
@given(ANYTHING)
def test_as_bool_accepts_only_true_and_false(value):
    out = _gr_error(lambda: common.as_bool(value, "Binarize"), "Binarize")
    assert out is value if isinstance(value, bool) else out is None


@SETTINGS
@given(ANYTHING | st.sampled_from(["mlp", "conv"]), st.lists(st.text(max_size=5), min_size=1, max_size=4))
def test_as_choice_returns_one_of_the_choices_or_a_gr_error(value, choices):
    choices = [*choices, "mlp"]
    out = _gr_error(lambda: common.as_choice(value, "Architecture", choices), "Architecture")
    assert (out in choices and out == value) if value in choices else out is None


COMPONENTS = [
    ("slider", lambda: common.CheckedSlider(1, 200, value=20, step=1, label="Epochs")),
    ("float slider", lambda: common.CheckedSlider(0.0, 3.0, value=1.0, step=0.1, label="Temperature")),
    ("whole number", lambda: common.CheckedNumber(None, precision=0, label="Class label")),
    ("number", lambda: common.CheckedNumber(1e-3, label="Learning rate")),
]


@pytest.fixture(scope="module")
def components():
    return {name: make() for name, make in COMPONENTS}


@FEW
@given(ANYTHING | st.integers(), st.sampled_from([n for n, _ in COMPONENTS]))
@example(None, "slider")
@example(None, "whole number")
@example(3.7, "whole number")
@example(2**63, "whole number")
def test_checked_components_pass_a_valid_number_or_raise_a_gr_error(components, value, name):
    comp = components[name]
    try:
        out = comp.preprocess(value)
    except gr.Error as err:
        assert err.message.startswith(comp.label) and err.message.endswith("."), err.message
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert not _in_bounds(comp, value)  # a usable number is never refused
        return
    if value is None and isinstance(comp, gr.Number):
        assert out is None  # an empty Number reaches the handler as None, as in Gradio
        return
    assert isinstance(out, (int, float)) and not isinstance(out, bool) and _in_bounds(comp, out)
    if comp.precision == 0:
        assert type(out) is int


def _in_bounds(comp, v) -> bool:
    try:
        f = float(v)
    except OverflowError:
        return False
    return (
        math.isfinite(f)
        and (comp.minimum is None or comp.minimum <= v <= comp.maximum)
        and (comp.precision != 0 or f.is_integer())
    )


# ----------------------------------------------------------------------------- Limits

ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
ENV_VALUE = st.one_of(st.none(), st.integers(-5, 10**6).map(str), ENV_TEXT, st.just("9" * 5000))
LIMIT_VARS = {
    "VAE_EXPLORER_MAX_EPOCHS": "max_epochs",
    "VAE_EXPLORER_MAX_TRAIN_IMAGES": "max_train_images",
    "VAE_EXPLORER_MAX_HIDDEN": "max_hidden",
    "VAE_EXPLORER_MAX_LATENT": "max_latent",
}


@SETTINGS
@given(st.fixed_dictionaries({k: ENV_VALUE for k in LIMIT_VARS}), st.booleans())
def test_limits_from_the_environment_are_positive_whole_numbers_or_a_value_error(env, on_space):
    patch = {k: v for k, v in env.items() if v is not None}
    if on_space:
        patch["SPACE_ID"] = "someone/space"
    removed = [k for k, v in env.items() if v is None] + ([] if on_space else ["SPACE_ID", "SYSTEM"])
    with mock.patch.dict(os.environ, patch):
        for k in removed:
            os.environ.pop(k, None)
        try:
            limits = Limits.from_env()
        except ValueError as err:
            assert any(k in str(err) for k in patch), str(err)  # it names the variable at fault
            return
    for var, field in LIMIT_VARS.items():
        value = getattr(limits, field)
        assert type(value) is int and value >= 1
        if env[var] is not None and env[var].strip():
            assert value == int(env[var])


@SETTINGS
@given(
    st.builds(Limits, st.integers(1, 300), st.integers(1, 10**5), st.integers(1, 2000), st.integers(1, 100)),
    st.integers(1, 400),
    st.integers(1, 3000),
    st.integers(1, 150),
)
def test_limits_refuse_exactly_what_exceeds_them(limits, epochs, hidden, latent):
    model = ModelConfig(input_shape=(1, 8, 8), hidden_dim=hidden, latent_dim=latent)
    train = TrainConfig(epochs=epochs)
    over = epochs > limits.max_epochs or hidden > limits.max_hidden or latent > limits.max_latent
    refused = _value_error(lambda: limits.check(model, train) or "ok") is None
    assert refused == over


# ----------------------------------------------------------------------------- images


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8))
    frames = [Image.new("L", (9, 9), v) for v in (0, 128, 255)]
    return [
        _encode(grey, "PNG"),
        _encode(grey.convert("RGBA"), "PNG"),
        _encode(grey.convert("P"), "GIF", save_all=True, append_images=frames),
        _encode(grey.convert("RGB"), "JPEG"),
        _encode(grey.convert("CMYK"), "JPEG"),
        _encode(grey, "BMP"),
        _encode(Image.new("I;16", (7, 5), 3000), "TIFF"),
        _encode(grey, "WEBP"),
    ]


SEEDS = _seed_images()
MUTATED = st.builds(
    lambda seed, edits, cut: _mutate(SEEDS[seed], edits, cut),
    st.integers(0, len(SEEDS) - 1),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.floats(0, 1)),
)


def _mutate(data: bytes, edits, cut) -> bytes:
    b = bytearray(data)
    for where, value in edits:
        b[int(where * len(b))] = value
    return bytes(b if cut is None else b[: int(cut * len(b))])


@SETTINGS
@given(st.one_of(st.binary(max_size=200), MUTATED), st.integers(1, 32), st.integers(1, 32))
@example(b"", 8, 8)
@example(b"\x89PNG\r\n\x1a\n", 8, 8)
def test_any_bytes_load_as_a_valid_image_or_a_value_error(data, h, w):
    x = _value_error(lambda: load_image(data, (1, h, w)))
    if x is not None:
        assert x.shape == (1, 1, h, w) and x.dtype == torch.float32
        assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


# ----------------------------------------------------------------------------- npz data

KEYS = ["x_train", "x_test", "y_train", "y_test", "other"]
ANY_DTYPE = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=2),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
ANY_ARRAY = ANY_DTYPE.flatmap(lambda dt: hnp.arrays(dt, SHAPES))


@st.composite
def _plausible(draw):
    """Arrays that are nearly right, so that the accepting path is exercised as often as not."""
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    flat = draw(st.booleans()) and h == w
    dt = draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.bool_]))
    elems = st.floats(-0.1, 1.1) if np.issubdtype(dt, np.floating) else None
    if dt in (np.uint8, np.int16):
        elems = st.integers(-1 if dt == np.int16 else 0, 256 if dt == np.int16 else 255)

    def images(k):
        return draw(hnp.arrays(dt, (k, h * w) if flat else (k, h, w), elements=elems))

    arrays = {"x_train": images(n), "x_test": images(m)}
    if draw(st.booleans()):
        arrays["y_train"] = draw(hnp.arrays(np.int64, (n,), elements=st.integers(-1, 1000)))
        m_labels = draw(st.sampled_from([m, m + 1]))
        arrays["y_test"] = draw(hnp.arrays(np.int64, (m_labels,), elements=st.integers(0, 12)))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=1)):
        arrays[key] = draw(ANY_ARRAY)
    return arrays


@pytest.fixture(scope="module")
def npz_dir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _check_dataset(ds) -> None:
    n, m = len(ds.x_train), len(ds.x_test)
    assert n >= 1 and m >= 1 and ds.x_train.shape[2:] == ds.x_test.shape[2:] and ds.x_train.shape[1] == 1
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == torch.float32 and torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert ds.y_train.shape == (n,) and ds.y_test.shape == (m,)
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == torch.int64 and y.min() >= 0 and y.max() < ds.num_classes
    assert ds.image_shape[1] * ds.image_shape[2] <= cfg_mod.MAX_PIXELS


@SETTINGS
@given(st.one_of(_plausible(), st.dictionaries(st.sampled_from(KEYS), ANY_ARRAY, max_size=4)))
def test_any_npz_arrays_load_as_a_valid_dataset_or_a_value_error(npz_dir, arrays):
    path = npz_dir / "data.npz"
    np.savez(path, **arrays)
    ds = _value_error(lambda: load_npz(path))
    if ds is not None:
        _check_dataset(ds)
        assert ds.has_labels == ("y_train" in arrays)


@FEW
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=300).map(lambda b: b"\x93NUMPY\x01\x00" + b),
        MUTATED,
    )
)
def test_any_file_content_loads_as_a_valid_dataset_or_a_value_error(npz_dir, data):
    path = npz_dir / "junk.npz"
    path.write_bytes(data)
    ds = _value_error(lambda: load_npz(path))
    if ds is not None:
        _check_dataset(ds)


@FEW
@given(
    st.integers(0, 10**6),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_a_damaged_npz_loads_as_a_valid_dataset_or_a_value_error(npz_dir, seed, edits):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    save = np.savez_compressed if seed % 2 else np.savez
    save(
        buf,
        x_train=rng.integers(0, 256, (20, 6, 6), dtype=np.uint8),
        x_test=rng.random((5, 36)),
        y_train=rng.integers(0, 3, 20),
        y_test=rng.integers(0, 3, 5),
    )
    path = npz_dir / "damaged.npz"
    path.write_bytes(_mutate(buf.getvalue(), edits, None))
    ds = _value_error(lambda: load_npz(path))
    if ds is not None:
        _check_dataset(ds)
