"""The data sets one session may use: the registered ones, and the one its user uploaded.

An uploaded data set (uploads.read_upload) lives in its Workspace alone: no other session can
see, list or load it, and it goes when the workspace goes. Its name (``upload:<file stem>``)
travels with a checkpoint trained on it, so that loading that file where the data is not says
so in a sentence instead of failing in the dark.
"""

from __future__ import annotations

import os

from .data import dataset_names, load_dataset
from .dataset import UPLOADED, ImageDataset
from .limits import Limits, UploadLimits, limit_data
from .settings import BY_NAME
from .uploads import UploadedData, read_upload


class OwnData:
    """A Workspace's data sets (mixed into session.Workspace, which sets the attributes below)."""

    limits: Limits
    data_dir: str | None
    upload: UploadedData | None  # the data set this session's user uploaded last (None: none yet)
    data_source: UploadedData | None  # the upload the current model's data came from (None: registered)

    def datasets(self) -> list[str]:
        """What this session may train on: the registered data sets, then its own upload."""
        own = [self.upload.data.name] if self.upload is not None else []
        return [*dataset_names(), *own]

    def use_upload(
        self, path: str | os.PathLike, size: int = 28, seed: int = 0, limits: UploadLimits | None = None
    ) -> UploadedData:
        """Read an uploaded .zip or .npz (checked: uploads.py) as this session's own data set; it
        replaces an earlier upload. The model is untouched: Start trains a new one on it."""
        up = read_upload(path, size=size, seed=seed, limits=limits)
        smallest = BY_NAME["batch_size"].lo  # Start refuses a batch larger than the training split
        if len(up.data.x_train) < smallest:
            raise ValueError(
                f"{up.source} leaves {len(up.data.x_train)} images to train once {len(up.data.x_test)} "
                f"are set aside to test; at least {smallest} are needed (the smallest batch): add images."
            )
        if up.data.name in dataset_names():  # never shadows a registered set (a name= can't, but be sure)
            raise ValueError(f"{up.data.name!r} is the name of a shipped data set; rename the file.")
        self.upload = up
        return up

    def _data_for(self, name: str) -> ImageDataset:
        """The data set ``name`` as this session trains on it (cut to the hosted limit)."""
        if self.upload is not None and name == self.upload.data.name:
            data = self.upload.data
        elif name.startswith(UPLOADED):
            raise ValueError(
                f"this model was trained on {name[len(UPLOADED) :]!r}, a data set someone uploaded, and "
                "it is not in this session: upload the same file on the Train tab (Your own images) "
                "first, then load the model again."
            )
        elif name in dataset_names():
            data = load_dataset(name, self.data_dir, download=True)
        else:
            # Only registered names are followed, never a path on this server (an "npz:/etc/..."
            # in a checkpoint would probe or read the server's files).
            raise ValueError(
                f"this model was trained on {name!r}; here only {', '.join(self.datasets())} can be used."
            )
        return limit_data(data, self.limits.max_train_images)
