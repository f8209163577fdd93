"""Where a training run stands, shared by the trainer in this process (trainer.Trainer) and the
one in a worker (worker.ProcessTrainer): the run's progress (RunProgress: epochs, steps, history,
the RunInfo a checkpoint keeps), an epoch part-way through (EpochProgress: stepping stops
anywhere in an epoch and the next step or run goes on from there), what one step may train
(PARTS), and the check that a model, its data and its settings go together."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import RunInfo, TrainConfig
from .dataset import ImageDataset
from .model import LatentModel
from .records import EpochRecord

PARTS = ("both", "encoder", "decoder")  # what one step may train (the other side held still)


def check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"a step trains {', '.join(map(repr, PARTS))}, not {part!r}.")
    return part


@dataclass
class EpochProgress:
    """An epoch part-way through. Stepping (``Trainer.steps``) may stop anywhere in an epoch; the
    next step, or a whole run, goes on from the same batch of the same order."""

    perm: torch.Tensor  # (N,) int64: the epoch's order of the training images
    batches: int = 0  # batches of ``perm`` taken so far (skipped non-finite ones included)
    loss: float = 0.0  # Σ over the applied steps of batch size × the batch's objective
    recon: float = 0.0  # the same sum for the reconstruction term
    kl: float = 0.0  # and for the KL term
    seen: int = 0  # images in the applied steps
    skipped: int = 0  # non-finite steps skipped
    bad_in_row: int = 0  # non-finite steps in a row, up to now
    seconds: float = 0.0  # wall time of the steps so far

    def add(self, images: int, loss: float, recon: float, kl: float) -> None:
        """An applied step's batch means, weighted by its ``images``."""
        self.seen += images
        self.loss += loss * images
        self.recon += recon * images
        self.kl += kl * images


def check_compatible(model: LatentModel, data: ImageDataset, config: TrainConfig) -> None:
    """ValueError unless ``model`` can train on ``data`` with ``config``."""
    if config.batch_size > len(data.x_train):
        raise ValueError(
            f"batch size {config.batch_size} is larger than the {len(data.x_train)} training images."
        )
    if model.config.input_shape != data.image_shape:
        raise ValueError(
            f"the model expects images of shape {model.config.input_shape}, "
            f"but {data.name} has {data.image_shape}."
        )
    if model.config.conditional and not data.has_labels:
        raise ValueError(f"a conditional model needs labels, and {data.name} has none.")


class RunProgress:
    """What every trainer keeps of its run (this one and worker.ProcessTrainer): the model, its
    data and settings, how far the run has come, and the RunInfo a checkpoint records."""

    def __init__(
        self, model: LatentModel, data: ImageDataset, config: TrainConfig, epoch: int, step: int, history
    ) -> None:
        check_compatible(model, data, config)
        self.model = model
        self.data = data
        self.config = config
        self.epoch = epoch  # epochs finished
        self.step = step  # optimiser steps taken
        self.history: list[EpochRecord] = list(history or [])

    def run_info(self) -> RunInfo:
        """What a checkpoint of this trainer's model should record."""
        names = list(self.data.class_names)
        return RunInfo(self.data.name, names, self.config, list(self.history), self.step, self.epoch)
