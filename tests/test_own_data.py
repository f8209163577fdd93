"""A session's own data set (own_data.OwnData, Workspace.use_upload): it trains like any other,
also in the training worker; no other session has it; a checkpoint trained on it names it, and
loading that file where the data is not says so, while uploading the same file again brings it
back."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from PIL import Image, ImageDraw

from vae_explorer.config import TrainConfig
from vae_explorer.records import EpochRecord
from vae_explorer.session import Workspace

CPU = torch.device("cpu")
TC = TrainConfig(epochs=2, batch_size=8, seed=1)


def _letters_zip(path, classes: str = "xo", per_class: int = 12) -> str:
    """A zipped folder of drawn letters, one folder per class, black on white like a scan."""
    with zipfile.ZipFile(path, "w") as z:
        for c in classes:
            for i in range(per_class):
                im = Image.new("L", (40, 40), 255)
                d = ImageDraw.Draw(im)
                if c == "x":
                    d.line((6 + i % 4, 6, 34, 34 - i % 3), fill=0, width=4)
                    d.line((6, 34, 34 - i % 4, 6), fill=0, width=4)
                else:
                    d.ellipse((6 + i % 3, 6, 34, 34 - i % 4), outline=0, width=4)
                buf = io.BytesIO()
                im.save(buf, "PNG")
                z.writestr(f"mine/{c}/{i}.png", buf.getvalue())
    return str(path)


def _ws(**kw) -> Workspace:
    return Workspace.from_shipped("digits-2d", device=CPU, **kw)


def test_an_upload_trains_and_belongs_to_its_session_alone(tmp_path):
    ws, other = _ws(), _ws()
    up = ws.use_upload(_letters_zip(tmp_path / "letters.zip"), size=16, seed=3)
    assert up.data.name == "upload:letters" and up.classes == ["o", "x"] and up.images == 24
    assert up.data.image_shape == (1, 16, 16) and (up.size, up.seed) == (16, 3)
    assert "upload:letters" in ws.datasets() and "upload:letters" not in other.datasets()
    ws.new_model("upload:letters", TC, latent_dim=2, hidden_dim=32)
    epochs = [r for r in ws.train(TC) if isinstance(r, EpochRecord)]
    assert len(epochs) == 2 and ws.run.dataset == "upload:letters" and ws.data.class_names == ["o", "x"]
    with pytest.raises(ValueError, match="choose a data set from"):
        other.new_model("upload:letters", TC, latent_dim=2, hidden_dim=32)


def test_the_training_worker_trains_on_the_upload_exactly_as_the_thread_does(tmp_path):
    path = _letters_zip(tmp_path / "letters.zip")
    models = []
    for worker in (False, True):
        ws = _ws(train_worker=worker)
        ws.use_upload(path, size=16)
        ws.new_model("upload:letters", TC, latent_dim=2, hidden_dim=32)
        list(ws.train(TC))
        models.append(ws)
    a, b = (m.model.state_dict() for m in models)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e.test_loss for e in models[0].run.history] == [e.test_loss for e in models[1].run.history]


def test_a_checkpoint_of_an_upload_loads_only_where_the_upload_is(tmp_path):
    path = _letters_zip(tmp_path / "letters.zip")
    ws = _ws()
    ws.use_upload(path, size=16)
    ws.new_model("upload:letters", TC, latent_dim=2, hidden_dim=32)
    list(ws.train(TC))
    saved = ws.save(tmp_path / "letters.safetensors")
    elsewhere = _ws()
    before = elsewhere.run.dataset
    with pytest.raises(ValueError, match="'letters', a data set someone uploaded, and it is not in"):
        elsewhere.load(saved)
    assert elsewhere.run.dataset == before  # nothing changed
    elsewhere.use_upload(path, size=16)  # the same file, read the same way: the same data set
    elsewhere.load(saved)
    assert elsewhere.run.dataset == "upload:letters" and elsewhere.run.epoch == 2
    assert torch.equal(elsewhere.data.x_test, ws.data.x_test)


def test_a_refused_upload_changes_nothing(tmp_path):
    ws = _ws()
    ws.use_upload(_letters_zip(tmp_path / "letters.zip"), size=16)
    bad = tmp_path / "one.zip"
    _letters_zip(bad, classes="x")
    with pytest.raises(ValueError, match="a single class"):
        ws.use_upload(bad)
    assert ws.upload.data.name == "upload:letters" and ws.datasets()[-1] == "upload:letters"


def test_the_notebook_reads_the_upload_the_model_was_trained_on(tmp_path):
    from vae_explorer.notebook import spec_from_workspace

    ws = _ws()
    ws.use_upload(_letters_zip(tmp_path / "letters.zip"), size=16, seed=2)
    ws.new_model("upload:letters", TC, latent_dim=2, hidden_dim=32)
    list(ws.step(TC, 2, "encoder"))
    spec = spec_from_workspace(ws)
    assert (spec.upload.file, spec.upload.size, spec.upload.seed) == ("letters.zip", 16, 2)
    assert any("encoder or the decoder alone" in c for c in spec.caveats)
    # Replaced by another upload of the same name, read another way: the notebook still reads the
    # file as the model's data was read, not as the latest upload was.
    ws.use_upload(_letters_zip(tmp_path / "letters.zip"), size=20)
    assert spec_from_workspace(ws).upload.size == 16


def test_an_upload_too_small_to_fill_the_smallest_batch_is_refused_and_changes_nothing(tmp_path):
    # Five classes of two: one of each to test leaves five to train, below the smallest batch (8),
    # so Start could never train on it; the earlier upload stays.
    ws = _ws()
    ws.use_upload(_letters_zip(tmp_path / "letters.zip"), size=16)
    with zipfile.ZipFile(_letters_zip(tmp_path / "src.zip", per_class=5)) as src:
        pictures = [src.read(n) for n in src.namelist()]
    with zipfile.ZipFile(tmp_path / "five.zip", "w") as z:
        for k, png in enumerate(pictures):
            z.writestr(f"mine/c{k // 2}/{k}.png", png)
    with pytest.raises(ValueError, match=r"five\.zip leaves 5 images to train once 5 are set aside"):
        ws.use_upload(tmp_path / "five.zip", size=16)
    assert ws.upload.data.name == "upload:letters"
