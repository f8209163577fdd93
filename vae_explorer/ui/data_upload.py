"""Your own images, on the Train tab: a .zip of images (one folder per class gives labels) or an
.npz becomes this session's own data set (Workspace.use_upload; every check is in uploads.py).
The data lives in the session's memory alone, and goes with it. The uploaded file stays in
Gradio's upload cache, which is content-addressed and shared (a class uploading the lecturer's
one zip uploads one file), so it is not deleted here: the cache drops it within two hours."""

from __future__ import annotations

import html
import math
from pathlib import Path

import gradio as gr

from ..limits import UploadLimits
from ..settings import BY_NAME
from ..uploads import SIZES
from .common import Refused, display, guard, workspace
from .train_settings import dataset_choices, parse

UPLOAD_LIMITS = UploadLimits.from_env()
PREVIEW = 16  # prepared training images shown, so a student sees what the model will see


def _summary(up) -> str:
    d = up.data
    kinds = f"{len(up.classes)} classes ({', '.join(up.classes[:12])}{'…' if len(up.classes) > 12 else ''})"
    labels = kinds if up.classes else "no labels (the map is drawn in one colour)"
    _, h, w = d.image_shape
    return (
        f"<b>{html.escape(up.source)}</b>: {up.images:,} images of {h}×{w}, {html.escape(labels)}; "
        f"{len(d.x_train):,} to train, {len(d.x_test):,} to test (seed {up.seed})"
        + (f"; {up.ignored} system files skipped" if up.ignored else "")
        + ". Below: the first training images as the model sees them. Press <b>Start</b> to train a "
        "new model on it."
    )


def fitting_batch(n_train: int, batch: int) -> int:
    """The batch size to train ``n_train`` images with: ``batch`` when it fits, else the largest
    power of two that gives at least four steps an epoch — but never below the Batch size
    control's own minimum, which Start would refuse."""
    if n_train >= 4 * batch:
        return batch
    return max(BY_NAME["batch_size"].lo, 2 ** int(math.log2(max(1, n_train // 4))))


def on_data_upload(ws, file, size, batch_size):
    """Read an uploaded .zip of images or .npz as this session's own data set and select it in
    the Data set menu; ``size``: the side its images are fitted into (a zip's; 28 like MNIST).
    A batch size too large for a small set is lowered so that Start works at once."""
    ws = workspace(ws)
    # The numbers first (an API call may send anything), then the file.
    if isinstance(size, bool) or not isinstance(size, int | float) or size != int(size):
        raise Refused(f"Image size must be a whole number from {SIZES[0]} to {SIZES[1]}.")
    if not SIZES[0] <= size <= SIZES[1]:
        raise Refused(f"Image size must be a whole number from {SIZES[0]} to {SIZES[1]}.")
    batch_size = parse("batch_size", batch_size)
    if not file:
        return [ws, *[gr.skip()] * 5]
    path = Path(file if isinstance(file, str) else file.name)
    up = guard(lambda: ws.use_upload(path, size=int(size), limits=UPLOAD_LIMITS))
    name = up.data.name
    menu = gr.Dropdown(
        choices=[*dataset_choices(), (f"{name} (yours)", name)],
        value=name,
        info=f"{name}: your {up.images:,} images, in this session only; {BY_NAME['dataset'].help}",
    )
    preview = display(up.data.x_train[:PREVIEW], nrow=8)
    batch = int(batch_size)
    fitted = fitting_batch(len(up.data.x_train), batch)
    note = _summary(up) + (f" Batch size set to {fitted} to fit it." if fitted != batch else "")
    return [ws, menu, note, preview, None, fitted]


def build() -> dict:
    """The upload's components, under the Data set menu (wired by ``wire``)."""
    with gr.Accordion("Your own images", open=False, elem_id="data-upload-box"):
        gr.Markdown(
            "A **.zip** of images (PNG, JPEG, …), with one folder per class if they have labels "
            "(`a/1.png`, `b/2.png`), or an **.npz** with `x_train`, `x_test` (and `y_train`, "
            "`y_test`). Each image is made grey, light on dark and centred, like a drawing. "
            f"At most {UPLOAD_LIMITS.max_upload_bytes // 2**20} MB and {UPLOAD_LIMITS.max_files:,} "
            "files. Only this session can use it.",
            elem_classes=["vx-small"],
        )
        size = gr.Number(
            28,
            precision=0,
            minimum=SIZES[0],
            maximum=SIZES[1],
            label="Image size (pixels a side)",
            elem_id="data-upload-size",
        )
        file = gr.File(
            label="Upload a .zip or .npz", file_types=[".zip", ".npz"], elem_id="data-upload", height=120
        )
        note = gr.HTML(elem_id="data-upload-note")
        # No label or buttons: over a two-row grid this narrow they would hide the first row.
        preview = gr.Image(
            label="Your images as the model sees them",
            show_label=False,
            buttons=[],
            elem_id="data-upload-preview",
            interactive=False,
            format="png",
        )
    return {"file": file, "size": size, "note": note, "preview": preview}


def wire(box: dict, state: gr.State, dataset: gr.Dropdown, batch_size: gr.components.Component) -> None:
    """A new upload selects itself in the Data set menu and fits the batch size to it."""
    file = box["file"]
    file.upload(
        on_data_upload,
        [state, file, box["size"], batch_size],
        [state, dataset, box["note"], box["preview"], file, batch_size],
        api_name="upload_data",
        concurrency_limit=2,  # decoding thousands of images is CPU work: two at a time
    )
