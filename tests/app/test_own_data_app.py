"""Your own images through the launched app's API, as a script or a browser sends them: an
uploaded .zip or .npz becomes one session's data set (and no other session's), every refusal is
a sentence that leaves the session as it was, Step and Slow train one step at a time, and the
session exports as a notebook that reads the same upload again."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

gradio_client = pytest.importorskip("gradio_client")
nbformat = pytest.importorskip("nbformat")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

STEM = "shapes"
NAME = f"upload:{STEM}"
CLASSES = ("circle", "cross", "square")
PER_CLASS = 14
# A tiny model on the 33 training images of shapes.zip: a few steps an epoch, well under a second.
TRAIN = {"dataset": NAME, "hidden_dim": 16, "latent_dim": 2, "epochs": 2, "batch_size": 8, "seed": 0}


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _png(kind: str, i: int) -> bytes:
    """A dark shape on white paper (the app inverts light paper), different in each image."""
    im = Image.new("L", (32, 32), 255)
    d = ImageDraw.Draw(im)
    a, b = 4 + i % 5, 27 - i % 4
    if kind == "circle":
        d.ellipse((a, a, b, b), outline=0, width=3)
    elif kind == "cross":
        d.line((a, a, b, b), fill=0, width=3)
        d.line((a, b, b, a), fill=0, width=3)
    else:
        d.rectangle((a, a, b, b), outline=0, width=3)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _labelled(top: str = "mine/", classes=CLASSES, per_class: int = PER_CLASS) -> dict[str, bytes]:
    return {f"{top}{c}/{i:02d}.png": _png(c, i) for c in classes for i in range(per_class)}


def _zip(path, members: dict, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``members`` (name or ZipInfo → bytes), written as given: zipfile's writestr does
    not clean names, so '..' and absolute paths go in as a crafted archive has them."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _good_zip(folder):
    return _zip(folder / f"{STEM}.zip", {**_labelled(), "__MACOSX/._x": b"\x00\x05\x16\x07junk"})


def _upload(client, path, size=28, batch_size=128):
    return client.predict(handle_file(str(path)), size, batch_size, api_name="/upload_data")


def _info(client) -> dict:
    return client.predict(api_name="/model_info")


@pytest.fixture(scope="module")
def good_zip(tmp_path_factory):
    return _good_zip(tmp_path_factory.mktemp("good"))


def test_a_zipped_folder_of_class_folders_becomes_the_sessions_data_set_and_trains(url, good_zip):
    c = _client(url)
    menu, note, preview, file_out, batch = _upload(c, good_zip)
    choices = [value for _label, value in menu["choices"]]
    assert menu["value"] == NAME and NAME in choices and "mnist-10k" in choices
    assert "shapes.zip</b>: 42 images of 28×28" in note
    assert "3 classes (circle, cross, square)" in note and "33 to train, 9 to test" in note
    assert "1 system files skipped" in note  # the __MACOSX member
    assert batch == 8 and "Batch size set to 8 to fit it." in note  # 33 images: 4 steps or more
    assert file_out is None  # the upload box is cleared: the file is not kept
    grid = np.asarray(Image.open(preview))
    assert grid.shape[1] > 3 * grid.shape[0] and grid.std() > 0  # two rows of eight, not blank
    before = _info(c)["weights_sha256"]
    final = c.predict(**TRAIN, api_name="/train")
    assert "Finished" in final[0] and "epoch 2" in final[0]
    info = _info(c)
    assert info["dataset"] == NAME and info["epoch"] == 2 and not info["training"]
    assert info["step"] == 2 * 5  # 33 images in batches of 8: 5 steps an epoch
    assert info["weights_sha256"] != before


def _loose_zip(folder, per_kind=4):
    loose = {f"{k}{i:02d}.png": _png(k, i) for k in CLASSES for i in range(per_kind)}
    return _zip(folder / "loose.zip", loose)


def test_an_unlabelled_zip_of_loose_images_trains_too(url, tmp_path):
    c = _client(url)
    menu, note, _preview, _file, _batch = _upload(c, _loose_zip(tmp_path))
    assert menu["value"] == "upload:loose"
    assert "12 images of 28×28, no labels" in note and "10 to train, 2 to test" in note
    c.predict(**{**TRAIN, "dataset": "upload:loose", "epochs": 1}, api_name="/train")
    info = _info(c)
    assert info["dataset"] == "upload:loose" and info["epoch"] == 1 and info["step"] == 2


def test_the_batch_size_fitted_to_a_small_set_is_one_start_accepts(url, tmp_path):
    c = _client(url)
    _menu, note, _preview, _file, batch = _upload(c, _loose_zip(tmp_path))  # 10 images to train
    assert f"Batch size set to {batch} to fit it." in note
    c.predict(**{**TRAIN, "dataset": "upload:loose", "batch_size": batch, "epochs": 1}, api_name="/train")
    assert _info(c)["dataset"] == "upload:loose"


def test_an_upload_is_one_sessions_and_a_checkpoint_on_it_needs_it(url, good_zip):
    mine, theirs = _client(url), _client(url)
    _upload(mine, good_zip)
    mine.predict(**TRAIN, api_name="/train")
    trained = _info(mine)
    path = mine.predict(lecture=False, **TRAIN, api_name="/save_checkpoint")
    assert str(path).endswith(".safetensors")

    shipped = _info(theirs)
    with pytest.raises(AppError) as err:
        theirs.predict(**TRAIN, api_name="/train")
    refused = err.value.message  # Gradio's own check of the menu, which lists this session's choices
    assert refused.startswith(f"Value: {NAME} is not in the list of choices: ['mnist-10k'"), refused
    assert refused.count("upload:") == 1  # the other session's upload is not among them
    with pytest.raises(AppError) as err:
        theirs.predict(handle_file(str(path)), api_name="/upload_checkpoint")
    message = err.value.message
    assert "'shapes', a data set someone uploaded" in message and "upload the same file" in message
    assert _info(theirs) == shipped  # refused: still the shipped model

    _upload(theirs, good_zip)  # the same file, in this session too: now the checkpoint loads
    theirs.predict(handle_file(str(path)), api_name="/upload_checkpoint")
    loaded = _info(theirs)
    assert loaded["dataset"] == NAME and loaded["weights_sha256"] == trained["weights_sha256"]
    assert loaded["epoch"] == 2


# --- every refusal, each with its own small file -------------------------------------------------


def _bomb(path):
    return _zip(path, {**_labelled(), "mine/circle/zeros.png": bytes(2 * 2**20)})


def _symlink(path):
    link = zipfile.ZipInfo("mine/circle/link.png")
    link.external_attr = 0o120777 << 16
    return _zip(path, {**_labelled(), link: b"../../etc/passwd"})


def _truncated(path):
    whole = _zip(io.BytesIO(), _labelled()).getvalue()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _bad_crc(path):
    _zip(path, _labelled(), compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
    at = first.header_offset + 30 + len(first.filename) + 40  # inside its stored PNG, past the header
    data = bytearray(path.read_bytes())
    data[at : at + 8] = bytes(8)  # the member's CRC no longer matches its bytes
    path.write_bytes(bytes(data))
    return path


def _not_a_zip(path):
    path.write_bytes(b"plain text, named like a zip")
    return path


def _npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _mismatched(path):
    rng = np.random.default_rng(0)
    x_tr, x_te = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8), rng.integers(0, 256, (4, 10, 10), np.uint8)
    return _npz(path, x_train=x_tr, x_test=x_te)


def _pickled(path):
    objects = np.empty(12, dtype=object)
    objects[:] = [{"payload": i} for i in range(12)]
    return _npz(path, x_train=objects, x_test=objects[:3])  # numpy pickles object arrays


def _members(**members):
    return lambda path: _zip(path, {**_labelled(), **members})


REFUSALS = {
    # case: (file name, how it is made, what the sentence must say)
    "zip bomb": ("bomb.zip", _bomb, r"zeros\.png expands [\d,]+-fold .*at most 200-fold.*like a zip bomb"),
    "climbs out": (
        "climb.zip",
        _members(**{"../evil.png": _png("cross", 0)}),
        r"\.\./evil\.png has a '\.\.'",
    ),
    "absolute path": (
        "absolute.zip",
        _members(**{"/abs.png": _png("cross", 0)}),
        r"/abs\.png has an absolute",
    ),
    "symbolic link": ("link.zip", _symlink, r"link\.png is a symbolic link"),
    "not an image": ("text.zip", _members(**{"mine/circle/notes.txt": b"hi"}), r"notes\.txt is not an image"),
    "empty archive": ("empty.zip", lambda p: _zip(p, {}), r"[eE]mpty\.zip holds no images"),
    "single class": ("one.zip", lambda p: _zip(p, _labelled(classes=("circle",))), r"holds a single class"),
    "loose and in folders": (
        "mixed.zip",
        _members(**{"mine/stray.png": _png("cross", 1)}),
        r"images both in folders and outside them \(e\.g\. mine/stray\.png\)",
    ),
    "too few images": ("few.zip", lambda p: _zip(p, _labelled(per_class=3)), r"holds 9 images; at least 10"),
    "too few to train": (
        "small.zip",
        lambda p: _zip(p, _labelled(classes=tuple("abcde"), per_class=2)),
        r"small\.zip leaves 5 images to train once 5 are set aside to test; at least 8",
    ),
    "truncated zip": ("cut.zip", _truncated, r"[cC]ut\.zip is damaged or is not a \.zip file"),
    "bad checksum": ("crc.zip", _bad_crc, r"[cC]rc\.zip is damaged or is not a \.zip file"),
    "not a zip": ("fake.zip", _not_a_zip, r"[fF]ake\.zip is damaged"),
    "npz sizes differ": ("sizes.npz", _mismatched, r"x_train images are 8×8 but x_test images are 10×10"),
    "npz of objects": ("objects.npz", _pickled, r"[xX]_train\.npy in objects\.npz holds Python objects"),
}


@pytest.fixture(scope="module")
def own(url, good_zip):
    """A session that uploaded shapes.zip and trained on it: what each refusal must leave alone."""
    c = _client(url)
    _upload(c, good_zip)
    c.predict(**{**TRAIN, "epochs": 1}, api_name="/train")
    return c


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_upload_is_refused_in_a_sentence_and_changes_nothing(url, own, tmp_path, case):
    name, make, words = REFUSALS[case]
    path = make(tmp_path / name)
    before = _info(own)
    with pytest.raises(AppError) as err:
        _upload(own, path)
    message = err.value.message
    assert re.search(words, message), message
    first = message.split(" ", 1)[0]  # a sentence, or one that begins with a name spelt as it is
    assert (message[0].isupper() or "." in first or "/" in first) and message.endswith(".")
    assert len(message) < 300
    assert _info(own) == before  # the model, its data set and its weights as they were
    with pytest.raises(AppError, match="not in the list of choices"):  # nothing of it was kept
        own.predict(**{**TRAIN, "dataset": "upload:" + name.split(".")[0]}, api_name="/train")
    if case == "zip bomb":  # the upload before it is still the session's, and trains
        own.predict(**{**TRAIN, "epochs": 1, "seed": 3}, api_name="/train")
        after = _info(own)
        assert after["dataset"] == NAME and after["weights_sha256"] != before["weights_sha256"]


@pytest.mark.parametrize(
    "name, members, named",
    [("empty.zip", {}, "empty.zip"), ("text.zip", {"mine/circle/notes.txt": b"hi"}, "mine/circle/notes.txt")],
)
def test_a_refusal_names_the_file_as_it_is_named(url, own, tmp_path, name, members, named):
    path = _zip(tmp_path / name, {**(_labelled() if members else {}), **members})
    with pytest.raises(AppError) as err:
        _upload(own, path)
    assert err.value.message.startswith(f"{named} "), err.value.message


def test_a_file_of_another_kind_is_refused_before_the_app_reads_it(url, own, tmp_path):
    path = tmp_path / "shapes.tar"
    path.write_bytes(b"not read")
    before = _info(own)
    with pytest.raises(AppError, match=r"Invalid file type.*\.zip.*\.npz"):  # Gradio's File(file_types)
        _upload(own, path)
    assert _info(own) == before


def test_an_image_size_that_is_not_a_whole_number_is_refused(url, own, good_zip):
    before = _info(own)
    with pytest.raises(
        AppError, match=r"^Image size \(pixels a side\) must be a whole number from 8 to 64\.$"
    ):
        _upload(own, good_zip, size=20.5)
    assert _info(own) == before


# --- one step at a time ----------------------------------------------------------------------------


def _note_kl(status: str) -> tuple[float, float, str]:
    before, after, change = re.search(r"([\d.]+) → ([\d.]+) nats \(([+-][\d.]+)\)", status).groups()
    return float(before), float(after), change


def test_step_trains_the_encoder_or_the_decoder_alone(url):
    c = _client(url)
    start = _info(c)
    enc = c.predict("encoder", api_name="/step")[0]
    assert "(encoder only)" in enc
    kl_before, kl_after, _change = _note_kl(enc)
    assert kl_before != kl_after  # the encoder moved: q(z|x) and its KL changed
    after_enc = _info(c)
    assert after_enc["step"] == start["step"] + 1 and after_enc["weights_sha256"] != start["weights_sha256"]
    dec = c.predict("decoder", api_name="/step")[0]
    assert "(decoder only)" in dec
    kl_before, kl_after, change = _note_kl(dec)
    assert change == "+0.000" and kl_before == kl_after  # the encoder was held still
    after_dec = _info(c)
    assert after_dec["step"] == start["step"] + 2
    assert after_dec["weights_sha256"] != after_enc["weights_sha256"]  # the decoder moved
    with pytest.raises(AppError) as err:
        c.predict("everything", api_name="/step")
    refused = err.value.message
    assert re.search(r"'everything'.* not in the list of choices: \['both', 'encoder', 'decoder'\]", refused)
    assert _info(c) == after_dec


def test_slow_steps_until_stop(url):
    c = _client(url)
    start = _info(c)["step"]
    job = c.submit("both", api_name="/slow")
    deadline = time.time() + 60
    while len(job.outputs()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(job.outputs()) >= 2, "Slow showed no step within a minute"
    c.predict(api_name="/stop")
    final = job.result(timeout=60)
    assert "Stopped" in final[0]
    info = _info(c)
    assert not info["training"]
    assert 1 <= info["step"] - start <= 10  # four a second: a few, not the epoch's 63
    time.sleep(0.5)  # two Slow intervals: a runaway loop would have stepped on
    assert _info(c)["step"] == info["step"]


# --- the session as a notebook ---------------------------------------------------------------------


def _notebook(client) -> tuple[str, str]:
    """The exported notebook's file name and its cells' text, checked as a valid notebook."""
    path = client.predict(api_name="/export_notebook")
    assert str(path).endswith(".ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return Path(path).name, "\n".join(cell.source for cell in nb.cells)


def test_the_exported_notebook_reads_the_same_upload_again(url, good_zip):
    c = _client(url)
    name, shipped = _notebook(c)
    assert name.startswith("vae-mnist-10k-epoch")
    assert "load_dataset('mnist-10k')" in shipped and "read_upload" not in shipped
    _upload(c, good_zip)
    c.predict(**{**TRAIN, "epochs": 1}, api_name="/train")
    name, source = _notebook(c)
    assert name == "vae-upload-shapes-epoch1.ipynb"
    assert f"`{NAME}` (from the file `shapes.zip`)" in source and "hidden width 16" in source
    assert "FILE = 'shapes.zip'" in source
    assert "read_upload(FILE, size=28, seed=0, test_fraction=0.2).data" in source
    assert "load_dataset(" not in source
