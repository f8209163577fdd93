"""What travels between the server and a training worker (worker.py), and what the worker runs.

The worker gets a ``Job`` when it starts; it sends back every record, a ``Snapshot`` when asked
(a save while training), and ``Done`` (or ``Failed``) at the end. Weights go the other way
through ``Channels.published``, shared memory the server copies from under its model's lock.
Messages that outlive their sender carry NumPy arrays, not tensors (``plain``): a tensor would
travel as a handle to the sender's memory, gone once the worker has exited.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.multiprocessing as mp

from .build import build_model
from .config import ModelConfig, RunInfo, TrainConfig
from .data import load_dataset
from .dataset import ImageDataset
from .device import configure_threads
from .limits import limit_data
from .model import LatentModel
from .records import EpochRecord, StepRecord
from .run_state import EpochProgress
from .trainer import Trainer

PUBLISH_EVERY = 0.05  # seconds between two publications of the weights (each is one copy)
CONTEXT = mp.get_context("forkserver")
# Imported once by the fork server, not by every worker: PyTorch, this module, the compiler
# stack Adam's constructor imports (torch._dynamo, over a second) and sklearn's data sets (digits).
CONTEXT.set_forkserver_preload(["vae_explorer.worker_job", "torch._dynamo", "sklearn.datasets"])


@dataclass
class Job:
    """What a worker needs to continue a session's run (sent once, at its start)."""

    model_config: ModelConfig  # builds the same architecture
    dataset: str  # a registered name: the worker loads it itself, from the same files
    data_dir: str | None  # where the data sets are
    max_train_images: int  # the hosted limit the session's data set was cut to
    config: TrainConfig  # how to train
    epoch: int  # epochs finished
    step: int  # optimiser steps taken
    history: list[EpochRecord]  # the run's epoch records so far
    optimizer_state: dict | None  # Adam's moments to continue with (None: fresh)
    epochs: int | None  # epochs to train (None: the config's)
    rng_state: tuple | None  # the generators where the last run of this config left them
    nice: int  # CPU priority offset of the worker
    progress: EpochProgress | None = None  # the epoch stepping left part-way (None: between epochs)
    data: ImageDataset | None = None  # an uploaded data set travels along (a registered one is loaded)


@dataclass
class Snapshot:
    """A consistent state between two steps, for a checkpoint saved while training."""

    weights: dict[str, torch.Tensor]
    optimizer_state: dict
    run: RunInfo


@dataclass
class Done(Snapshot):
    """The run ended (finished or stopped): its last state, and what Continue goes on from."""

    rng_state: tuple  # the Trainer's generators (batch order, ε)
    progress: EpochProgress | None = None  # the epoch a stop left part-way, for Continue


@dataclass
class Failed:
    """The worker raised: the sentence to show."""

    message: str


class Channels:
    """Everything the two processes share for one run."""

    def __init__(self, model: LatentModel) -> None:
        # (…) per entry of the state dict: the model as the run starts, then the worker's latest
        # weights, copied under ``lock``
        self.published = {k: v.detach().clone().share_memory_() for k, v in model.state_dict().items()}
        self.lock = CONTEXT.Lock()
        self.seq = CONTEXT.Value("q", 0, lock=False)  # publications so far (read and written under lock)
        # worker → server: records, snapshots, the end. Bounded, so that the worker waits when the
        # server falls behind: a Stop takes effect within a few steps of what the user sees.
        self.out = CONTEXT.Queue(maxsize=64)
        self.stop = CONTEXT.Event()  # server → worker: stop after the current step
        self.snapshot = CONTEXT.Event()  # server → worker: send a Snapshot after the current step


def plain(obj):
    """Tensors as NumPy arrays, for a message whose sender may have exited when it is read
    (a tensor would travel as a handle to the sender's memory, an array travels as bytes)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, EpochProgress):
        return dataclasses.replace(obj, perm=plain(obj.perm))
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(plain(v) for v in obj)
    return obj


def as_tensors(obj):
    """The inverse of ``plain``."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, EpochProgress):
        return dataclasses.replace(obj, perm=as_tensors(obj.perm))
    if isinstance(obj, dict):
        return {k: as_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(as_tensors(v) for v in obj)
    return obj


def publish(model: LatentModel, ch: Channels, block: bool) -> bool:
    if not ch.lock.acquire(block=block):
        return False  # the server is copying the previous one: the next step publishes
    try:
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ch.published[k].copy_(v)
        ch.seq.value += 1
    finally:
        ch.lock.release()
    return True


def send(ch: Channels, msg: object) -> None:
    """Put ``msg`` for the server; give up (end the worker) if the server's process is gone."""
    while True:
        try:
            ch.out.put(msg, timeout=1.0)
            return
        except queue.Full:
            parent = mp.parent_process()
            if parent is not None and not parent.is_alive():
                os._exit(1)  # nobody will read this run: its memory goes back now


def work(job: Job, ch: Channels) -> None:
    """The worker process: the real Trainer, its records sent home."""
    try:
        if job.nice:
            os.nice(job.nice)
        configure_threads()
        data = job.data or load_dataset(job.dataset, job.data_dir, download=False)
        data = limit_data(data, job.max_train_images)
        model = build_model(job.model_config)
        model.load_state_dict(ch.published)  # the session's model as the run starts
        trainer = Trainer(
            model,
            data,
            job.config,
            epoch=job.epoch,
            step=job.step,
            history=job.history,
            optimizer_state=job.optimizer_state,
            rng_state=None if job.rng_state is None else as_tensors(job.rng_state),
            progress=as_tensors(job.progress),
        )
        last = 0.0
        for rec in trainer.run(job.epochs):
            if ch.stop.is_set():
                trainer.request_stop()  # honoured before the next step
            now = time.monotonic()
            if not isinstance(rec, StepRecord):  # an epoch's end, a stop, a rollback: always
                publish(model, ch, block=True)
                last = now
            elif not rec.skipped and now - last >= PUBLISH_EVERY and publish(model, ch, block=False):
                last = now
            send(ch, rec)
            if ch.snapshot.is_set():
                ch.snapshot.clear()
                weights, state = plain(model.state_dict()), plain(trainer.optimizer.state_dict())
                send(ch, Snapshot(weights, state, trainer.run_info()))
        publish(model, ch, block=True)
        weights, state = plain(model.state_dict()), plain(trainer.optimizer.state_dict())
        rng, progress = plain(trainer.rng_state()), plain(trainer.progress)
        send(ch, Done(weights, state, trainer.run_info(), rng, progress))
    except Exception as err:
        send(ch, Failed(str(err) or type(err).__name__))


def ready() -> None:
    """A worker that does nothing: forking one proves the fork server is up (worker.warm_up)."""


def state(msg: Snapshot) -> Snapshot:
    """A snapshot as the saver uses it: tensors again."""
    return Snapshot(as_tensors(msg.weights), as_tensors(msg.optimizer_state), msg.run)
