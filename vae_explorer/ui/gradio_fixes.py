"""A work-around for a Gradio race that a lecture hall's load hits (checked against gradio 6.31).

Gradio stores every image a handler returns in its cache folder under the hash of its bytes,
`<cache>/<sha256>/image.png` (`gradio.processing_utils.save_pil_to_cache`), and it rewrites
that file in place each time the same image is returned again. Two sessions showing the same
picture at the same moment — the same test images as interpolation endpoints, the shipped model
decoding the same place — rewrite it while the browser of the first is fetching it: the file is
served truncated ("Too little data for declared Content-Length") and the image does not load.
Gradio already writes copied files atomically (`save_file_to_cache`); this does the same for
images: a file whose name is the hash of its bytes that exists is complete, so it is reused, and
a new one is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from gradio import processing_utils


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """`gradio.processing_utils.save_pil_to_cache`, never exposing a partly written file."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.exists():
        # The same bytes, whole (files only ever appear here by rename). Touched, as Gradio does,
        # so that delete_cache ages it from this use.
        with contextlib.suppress(OSError):
            os.utime(path)
        return str(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return str(path)


def install() -> None:
    """Use it for every image Gradio caches (they all go through the module attribute)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
