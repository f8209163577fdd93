"""Export notebook: a Jupyter notebook that rebuilds a session's model at home.

A student who trained a VAE in the app takes away a notebook, not just weights: it loads the
same data set, builds the model with the same seeded initialisation, trains it with the same
seeded trainer for as many epochs, prints its test −ELBO beside the app's, draws the app's
figures (training curves, latent map, prior samples, reconstructions) and saves a checkpoint
the app can load. Every setting is written out as an explicit keyword argument, generated from
the config dataclasses' fields, so the notebook reads as a record of the run and a field added
to a config later is never forgotten. This module only writes text; it never runs the notebook.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .config import ModelConfig, TrainConfig
from .data import dataset_names
from .dataset import UPLOADED
from .notebook_cells import PER_CLASS, STEPS

if TYPE_CHECKING:
    from .session import Workspace

MAX_EPOCHS = 100_000  # epochs a spec may ask for (TrainConfig's bound on one run)
MAP_POINTS = 2000  # test images on the latent map, as in the app (Reads.test_posteriors)
GRID_ROWS = 8  # rows of prior samples
RECON_IMAGES = 8  # first test images shown with their reconstructions
MAX_CLASS_COLUMNS = 16  # a conditional model's sample grid has one column per class up to this


@dataclass(frozen=True)
class UploadSource:
    """How the notebook re-reads an uploaded data set (vae_explorer.uploads.read_upload)."""

    file: str  # the uploaded file's base name; the notebook expects it next to itself
    size: int  # image side the upload was prepared at
    seed: int  # the train/test split's seed
    test_fraction: float  # share of the images held out as the test set

    def __post_init__(self) -> None:
        name = self.file
        if not isinstance(name, str) or name in ("", ".", "..") or re.search(r"[/\\\x00]", name):
            raise ValueError(f"the upload's file must be a plain file name (no folders), got {name!r}.")
        for field_name, lo, hi in (("size", 1, 128), ("seed", 0, 2**31 - 1)):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"the upload's {field_name} must be a whole number from {lo} to {hi}.")
        frac = self.test_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
            raise ValueError(f"the upload's test_fraction must be between 0 and 1, got {frac!r}.")


@dataclass(frozen=True)
class NotebookSpec:
    """Everything the notebook needs to rebuild one session's model."""

    # Registry name ("digits", "mnist-10k", "fashion-mnist", ...) or "upload:<name>".
    dataset: str
    # The session model's configuration.
    model: ModelConfig
    # The training configuration of its run (seed, optimiser, β schedule, ...).
    train: TrainConfig
    # Epochs trained so far (0 allowed: an untrained model).
    epochs: int
    # The session's last test −ELBO (nats/image), printed for comparison; None if untrained.
    test_loss: float | None
    # How to re-read an uploaded data set (None for registry sets).
    upload: UploadSource | None = None
    # The session trained on the first this many training images (a hosted limit); None: all.
    train_images: int | None = None
    # Why the notebook may not give the app's numbers (one-sided steps, a model from a sweep, …).
    caveats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = self.dataset
        if not isinstance(name, str):
            raise ValueError(f"the data set must be a name (text), got {type(name).__name__}.")
        if name.startswith(UPLOADED) and len(name) > len(UPLOADED):
            if not isinstance(self.upload, UploadSource):
                raise ValueError(
                    f"this model was trained on {name[len(UPLOADED) :]!r}, a data set uploaded to another "
                    "session or replaced since: upload the file it was trained on again, then export."
                )
        elif name in dataset_names():
            if self.upload is not None:
                raise ValueError(f"{name!r} is a registered data set; it takes no UploadSource.")
        else:
            choices = ", ".join(dataset_names())
            raise ValueError(f"unknown data set {name!r}; choose one of {choices} or upload:<name>.")
        if not isinstance(self.model, ModelConfig) or not isinstance(self.train, TrainConfig):
            raise ValueError("the spec needs a ModelConfig as model and a TrainConfig as train.")
        ep = self.epochs
        if isinstance(ep, bool) or not isinstance(ep, int) or not 0 <= ep <= MAX_EPOCHS:
            raise ValueError(f"epochs must be a whole number from 0 to {MAX_EPOCHS}, got {ep!r}.")
        loss = self.test_loss
        if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float))):
            raise ValueError(f"test_loss must be a number or None, got {loss!r}.")
        n = self.train_images
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"train_images must be a positive whole number or None, got {n!r}.")


def spec_from_workspace(ws: Workspace, upload: UploadSource | None = None) -> NotebookSpec:
    """The spec of a session (session.Workspace): its model, its run's settings and progress.
    ``upload``: how to re-read the data set, when the session trained on an upload."""
    run = ws.run_info()
    last = run.history[-1].test_loss if run.history else None
    # Copies: the spec must not change when the session goes on training or is reset.
    model, train = dataclasses.replace(ws.model.config), dataclasses.replace(run.train)
    up = ws.data_source  # the upload the model's data came from (None: a registered set)
    if upload is None and up is not None and up.data.name == run.dataset:
        upload = UploadSource(up.source, up.size, up.seed, up.test_fraction)  # read the same way
    n = len(ws.data.x_train)  # at the server's cap the set may have been cut: the notebook cuts it alike
    train_images = n if n >= ws.limits.max_train_images else None
    caveats = []
    if any(r.part != "both" for r in ws.step_log):
        caveats.append(
            "some steps trained the encoder or the decoder alone (Step); here every step trains both"
        )
    if run.epoch and not run.history:
        caveats.append("the model came from a β sweep or a file without its history; here it trains afresh")
    return NotebookSpec(run.dataset, model, train, run.epoch, last, upload, train_images, tuple(caveats))


def _literal(value: Any) -> str:
    """Python source for a config value (str, int, float, bool, None, tuple)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, (str, int, float, bool, tuple, type(None))):
        return repr(value)
    raise ValueError(f"cannot write {type(value).__name__} values into a notebook.")


def _config_call(config: ModelConfig | TrainConfig) -> str:
    """``ModelConfig(\\n    arch='mlp',\\n    ...)``: every field, one keyword per line."""
    args = "".join(f"    {f.name}={_literal(getattr(config, f.name))},\n" for f in dataclasses.fields(config))
    return f"{type(config).__name__}(\n{args})"


def _settings_table(config: ModelConfig | TrainConfig) -> str:
    rows = [f"| `{f.name}` | `{_literal(getattr(config, f.name))}` |" for f in dataclasses.fields(config)]
    return "\n".join([f"| {type(config).__name__} field | value |", "|---|---|", *rows])


def _checkpoint_name(spec: NotebookSpec) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", spec.dataset).strip("-") or "model"
    return f"{stem}-{spec.model.arch}-{spec.model.latent_dim}d-notebook.safetensors"


def _title(spec: NotebookSpec) -> str:
    m, t = spec.model, spec.train
    kind = "plain autoencoder" if m.autoencoder else ("conditional VAE" if m.conditional else "VAE")
    app = "untrained" if spec.test_loss is None else f"{spec.test_loss:.4f} nats/image"
    source = f" (from the file `{spec.upload.file}`)" if spec.upload else ""
    caveats = "".join(f"\n**This session differs:** {c}." for c in spec.caveats)
    caveats = caveats + "\n" if caveats else ""
    return f"""# VAE Explorer: rebuilding your {kind} ({m.arch}) on `{spec.dataset}`

This notebook rebuilds the model you trained in VAE Explorer, with the library's own seeded
code, and draws the same figures.

- **Data set:** `{spec.dataset}`{source}
- **Model:** {m.arch}, latent size {m.latent_dim}, hidden width {m.hidden_dim}, {m.likelihood} likelihood
- **Seed:** {t.seed} (weights, batch order, binarisation and the noise ε)
- **Epochs:** {spec.epochs}, batch size {t.batch_size}, learning rate {t.lr:g}, β = {t.beta:g} \
({t.kl_schedule} schedule)
- **Test −ELBO in the app:** {app}

Run it where `vae_explorer` can be imported (e.g. after `pip install -e .` in the project).
The same seed on the same kind of machine gives the same model; a GPU, or a session whose
settings changed between runs (only the last run's settings are recorded), may differ a little.
{caveats}
{_settings_table(m)}

{_settings_table(t)}
"""


def _data_code(spec: NotebookSpec) -> str:
    cut = ""
    if spec.train_images is not None:  # what the app's server allowed: the first N training images
        cut = f"\ndata = limit_data(data, {spec.train_images!r})  # as the app trained it"
    if spec.upload is None:
        return f"data = load_dataset({spec.dataset!r}){cut}"
    up = spec.upload
    return (
        "from vae_explorer.uploads import read_upload\n\n"
        f"FILE = {up.file!r}  # the uploaded file, next to this notebook\n"
        f"data = read_upload(FILE, size={up.size!r}, seed={up.seed!r}, "
        f"test_fraction={up.test_fraction!r}).data{cut}"
    )


def _values(spec: NotebookSpec) -> dict[str, str]:
    """What the steps' $names stand for, as Python source (or markdown for per_class)."""
    m = spec.model
    nrow = m.num_classes if m.conditional and m.num_classes <= MAX_CLASS_COLUMNS else 8
    return {
        "load": _data_code(spec),
        "model_config": _config_call(m),
        "train_config": _config_call(spec.train),
        "epochs": repr(spec.epochs),
        "app_loss": "None" if spec.test_loss is None else _literal(float(spec.test_loss)),
        "map_points": repr(MAP_POINTS),
        "per_class": PER_CLASS if m.conditional else "",
        "n_samples": repr(nrow * GRID_ROWS),
        "nrow": repr(nrow),
        "recon_images": repr(RECON_IMAGES),
        "checkpoint": repr(_checkpoint_name(spec)),
    }


def build_notebook(spec: NotebookSpec) -> nbformat.NotebookNode:
    """The notebook for ``spec``: a title, then a markdown explanation before each code cell."""
    if not isinstance(spec, NotebookSpec):
        raise ValueError(f"build_notebook needs a NotebookSpec, got {type(spec).__name__}.")
    cells = [new_markdown_cell(_title(spec))]
    values = _values(spec)
    for text, code in STEPS:
        text = Template(text).substitute(values)
        cells += [new_markdown_cell(text), new_code_cell(Template(code).substitute(values))]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"  # stable ids: the same spec writes the same file
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def write_notebook(spec: NotebookSpec, path: str | os.PathLike) -> Path:
    """Write the notebook to ``path`` (.ipynb); the path written."""
    path = Path(path)
    text = nbformat.writes(build_notebook(spec))
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ValueError(f"could not write the notebook {path} ({err.strerror or err}).") from None
    return path
