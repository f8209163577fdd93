"""Export notebook (notebook.py): the notebook is valid, writes every setting of the session,
and — executed in a fresh Jupyter kernel — rebuilds the session's model: the same test −ELBO,
the figures, and a checkpoint the app can load."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
from pathlib import Path

import nbformat
import pytest
import torch

from vae_explorer.checkpoint import load_checkpoint
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.notebook import (
    NotebookSpec,
    UploadSource,
    build_notebook,
    spec_from_workspace,
    write_notebook,
)
from vae_explorer.session import Workspace

ROOT = Path(__file__).resolve().parents[1]
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _spec(**changes) -> NotebookSpec:
    base = dict(
        dataset="digits",
        model=ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=32),
        train=TrainConfig(epochs=3, batch_size=64, seed=5),
        epochs=3,
        test_loss=31.5,
    )
    base.update(changes)
    return NotebookSpec(**base)


def _code(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def _assigned(tree: ast.AST, name: str):
    """The literal value assigned to ``name`` at the top level of the notebook's code."""
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]
    ]
    return value


def _cell_with(nb, needle: str):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    return cell


# ----------------------------------------------------------------------------- the session


@pytest.fixture(scope="module")
def trained():
    """A session as the app has it: a fresh 2-D MLP on digits, trained 3 epochs to the end."""
    ws = Workspace.from_shipped("digits-2d", device=torch.device("cpu"))
    tc = TrainConfig(epochs=3, batch_size=64, seed=3)
    ws.new_model("digits", tc, arch="mlp", latent_dim=2, hidden_dim=64)
    for _ in ws.train(tc):
        pass
    return ws


def test_spec_from_workspace_copies_the_session(trained):
    spec = spec_from_workspace(trained)
    assert spec.dataset == "digits" and spec.epochs == 3 and spec.upload is None
    assert spec.test_loss == trained.run_info().history[-1].test_loss
    assert spec.model == trained.model.config and spec.model is not trained.model.config
    assert spec.train == TrainConfig(epochs=3, batch_size=64, seed=3)


@pytest.mark.slow
def test_executed_notebook_rebuilds_the_session(trained, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    spec = spec_from_workspace(trained)
    path = write_notebook(spec, tmp_path / "session.ipynb")
    nb = nbformat.read(path, as_version=4)
    # Read the notebook's results back through one extra cell: its test_loss, and where the
    # kernel imported the library from (this copy, not some other installed one).
    probe = (
        "import json, vae_explorer\nprint(json.dumps({'test_loss': test_loss, 'lib': vae_explorer.__file__}))"
    )
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    # The kernel inherits this environment: put the project on its path; nothing is hard-coded
    # in the notebook.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    resources = {"metadata": {"path": str(tmp_path)}}  # the kernel's working directory
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources=resources).execute()

    result = json.loads(nb.cells[-1].outputs[-1].text.strip().splitlines()[-1])
    assert Path(result["lib"]).resolve().parent == ROOT / "vae_explorer"
    # The notebook takes the app's seeded path (build_model with the run's seed, Trainer with
    # the same TrainConfig, the same data split, the same seeded evaluation), and MLP training
    # is thread-invariant on the CPU (trainer.THREAD_INVARIANT): the numbers should agree to
    # float32 rounding (measured: identical). 1e-3 relative (~0.03 nats here) leaves room for a
    # different CPU kernel in the child process while still failing for any unseeded or
    # differently configured run (a different seed moves this loss by far more than 0.03 nats).
    assert math.isclose(result["test_loss"], spec.test_loss, rel_tol=1e-3)
    train_out = "".join(o.get("text", "") for o in _cell_with(nb, "trainer.run(").outputs)
    assert train_out.count("epoch ") == spec.epochs

    for needle in ("CURVES =", "encode_all("):  # training curves, latent map: plotly figures
        assert any(PLOTLY_MIME in o.get("data", {}) for o in _cell_with(nb, needle).outputs), needle
    for needle in ("sample_prior(", "reconstruct("):  # image grids: PNG
        assert any("image/png" in o.get("data", {}) for o in _cell_with(nb, needle).outputs), needle

    (saved,) = tmp_path.glob("*.safetensors")
    ck = load_checkpoint(saved)
    assert ck.model.config == spec.model and ck.run.epoch == spec.epochs and ck.run.dataset == "digits"
    assert ck.run.history[-1].test_loss == pytest.approx(result["test_loss"], rel=1e-9)
    weights = trained.model.state_dict()
    for name, value in ck.model.state_dict().items():  # the same model, not just the same loss
        torch.testing.assert_close(value, weights[name], rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------------------- the text


def test_notebook_is_valid_and_explains_every_step(tmp_path):
    spec = _spec()
    path = write_notebook(spec, tmp_path / "nb.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    for text in ("`digits`", "**Seed:** 5", "**Epochs:** 3", "31.5000"):
        assert text in title.source
    assert len(nb.cells) > 1
    for before, cell in zip(nb.cells, nb.cells[1:], strict=False):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown" and before.source.strip()
    ast.parse(_code(nb))  # every code cell is Python
    assert nbformat.writes(build_notebook(spec)) == path.read_text(encoding="utf-8")  # deterministic


def test_every_config_field_is_written_with_its_value():
    # Every field differs from its default, so a field left out (the default used) is caught.
    model = ModelConfig(
        input_shape=(1, 8, 12), arch="conv", latent_dim=5, bottom_latent_dim=7, hidden_dim=48,
        likelihood="gaussian", gaussian_variance="learned", gaussian_std=0.25, conditional=True,
        autoencoder=True, num_classes=4, logvar_min=-6.5, logvar_max=4.5, clamp_logvar=False,
    )  # fmt: skip
    train = TrainConfig(
        epochs=7, batch_size=33, lr=3e-4, beta=0.5, kl_schedule="cyclical", warmup_epochs=2.5,
        cycles=3, cycle_ratio=0.75, free_bits=0.1, grad_clip=2.0, binarize=True, seed=11, max_bad_steps=9,
        encoder_steps=2,
        aggressive_epochs=0.5,
    )  # fmt: skip
    for config in (model, train):
        defaults = type(config)()
        for f in dataclasses.fields(config):
            assert getattr(config, f.name) != getattr(defaults, f.name), f.name
    tree = ast.parse(_code(build_notebook(_spec(model=model, train=train, epochs=7))))
    for config in (model, train):
        (call,) = _calls(tree, type(config).__name__)
        assert not call.args
        written = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        assert written == {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        assert type(config)(**written) == config
    assert ast.literal_eval(_assigned(tree, "EPOCHS")) == 7


def test_untrained_spec_gives_a_valid_notebook():
    nb = build_notebook(_spec(epochs=0, test_loss=None))
    nbformat.validate(nb)
    tree = ast.parse(_code(nb))
    assert ast.literal_eval(_assigned(tree, "EPOCHS")) == 0
    assert ast.literal_eval(_assigned(tree, "APP_TEST_LOSS")) is None
    assert "untrained" in nb.cells[0].source


def test_a_non_finite_app_loss_is_still_valid_python():
    tree = ast.parse(_code(build_notebook(_spec(test_loss=math.inf))))
    value = _assigned(tree, "APP_TEST_LOSS")
    assert isinstance(value, ast.Call) and value.func.id == "float"
    assert math.isinf(float(ast.literal_eval(value.args[0])))


def test_upload_spec_reads_the_upload():
    upload = UploadSource(file="my digits.png", size=28, seed=7, test_fraction=0.25)
    model = ModelConfig(input_shape=(1, 28, 28))
    nb = build_notebook(_spec(dataset="upload:my digits", model=model, upload=upload))
    code = _code(nb)
    tree = ast.parse(code)
    assert "from vae_explorer.uploads import read_upload" in code
    assert not _calls(tree, "load_dataset")
    (call,) = _calls(tree, "read_upload")
    assert [a.id for a in call.args] == ["FILE"]
    assert ast.literal_eval(_assigned(tree, "FILE")) == "my digits.png"
    assert {k.arg: ast.literal_eval(k.value) for k in call.keywords} == {
        "size": 28,
        "seed": 7,
        "test_fraction": 0.25,
    }
    (data,) = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.value is call]
    assert data.attr == "data"
    assert ast.literal_eval(_assigned(tree, "CHECKPOINT")) == "upload-my-digits-mlp-2d-notebook.safetensors"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(epochs=-1), "epochs must be a whole number"),
        (dict(epochs=2.5), "epochs must be a whole number"),
        (dict(epochs=True), "epochs must be a whole number"),
        (dict(dataset=42), "data set must be a name"),
        (dict(dataset=None), "data set must be a name"),
        (dict(dataset="imagenet"), "unknown data set 'imagenet'"),
        (dict(dataset="upload:"), "unknown data set"),
        (dict(dataset="upload:mine"), "upload the file it was trained on again"),
        (dict(upload=UploadSource("a.png", 28, 0, 0.2)), "takes no UploadSource"),
        (dict(model={"arch": "mlp"}), "needs a ModelConfig"),
        (dict(test_loss="31.5"), "test_loss must be a number"),
    ],
)
def test_bad_spec_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        _spec(**changes)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(file="../secret.png"), "plain file name"),
        (dict(file=""), "plain file name"),
        (dict(size=0), "size must be a whole number"),
        (dict(seed=-1), "seed must be a whole number"),
        (dict(test_fraction=1.0), "test_fraction must be between 0 and 1"),
    ],
)
def test_bad_upload_source_is_refused(fields, match):
    base = dict(file="a.png", size=28, seed=0, test_fraction=0.2)
    with pytest.raises(ValueError, match=match):
        UploadSource(**{**base, **fields})


def test_write_notebook_reports_an_unwritable_path(tmp_path):
    with pytest.raises(ValueError, match="could not write the notebook"):
        write_notebook(_spec(), tmp_path / "missing" / "nb.ipynb")
