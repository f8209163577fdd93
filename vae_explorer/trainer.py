"""The training loop. It *yields* records (a StepRecord per step, an EpochRecord per epoch, a
StopRecord when it ends early) and never prints: the CLI and the UI decide how to show them.

Guarantees a caller can build on:
- It stops only between optimiser steps (a stop request, or the caller closing the generator),
  so the model and the optimiser are always consistent and ``run()`` can simply be called again.
- A non-finite loss or gradient skips its step; ``max_bad_steps`` of them in a row roll the
  weights and the optimiser back to the last good snapshot (taken at each epoch's start) and
  stop with a reason.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections.abc import Iterator

import torch

from .config import TrainConfig
from .dataset import ImageDataset, binarize
from .device import ThreadTuner
from .distributed import Rank, ShardedNoise
from .evaluate import evaluate
from .loss import LossTerms, elbo_loss
from .model import LatentModel
from .records import EpochRecord, StepRecord, StopRecord
from .run_state import EpochProgress, RunProgress, check_part
from .schedules import beta_at

THREAD_INVARIANT = ("mlp", "hierarchical")  # architectures trained bit-for-bit alike on 1 or 2 threads
TEST_BINARIZE_SEED = 12345  # the test set is binarised once, with a fixed draw, for comparability


def _clip_grad_norm(params: list[torch.nn.Parameter], clip: float) -> float:
    """Global gradient norm (returned before clipping); rescale only when it exceeds ``clip``.
    Same result as ``clip_grad_norm_``, without its extra pass over the gradients when the norm
    is already small — the common case."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
    if math.isfinite(norm) and norm > clip:
        torch._foreach_mul_(grads, clip / (norm + 1e-6))
    return norm


def _params_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


class Trainer(RunProgress):
    """Trains one model on one data set; keeps the optimiser so that training can continue."""

    def __init__(
        self,
        model: LatentModel,
        data: ImageDataset,
        config: TrainConfig,
        *,
        epoch: int = 0,
        step: int = 0,
        history: list[EpochRecord] | None = None,
        optimizer_state: dict | None = None,
        tune_threads: bool = True,
        rng_state: tuple[torch.Tensor, torch.Tensor] | None = None,
        rank: Rank | None = None,
        amp: torch.dtype | None = None,
        progress: EpochProgress | None = None,
    ) -> None:
        super().__init__(model, data, config, epoch, step, history)
        # The epoch in progress (None between epochs): stepping stops anywhere, a run goes on.
        self.progress = progress
        self.device = model.x_logvar.device
        self._params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self._params, lr=config.lr)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
            for group in self.optimizer.param_groups:
                group["lr"] = config.lr
        self.rank = rank  # None: one process; else this one's place among torchrun's processes
        self.amp = amp  # None: float32; torch.bfloat16: mixed precision (autocast) on a GPU
        self._net = model if rank is None else rank.wrap(model)  # what the training step calls
        self._stop = threading.Event()
        self._gen = torch.Generator().manual_seed(config.seed + epoch)  # batch order, binarisation
        self._eps_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1 + epoch)
        if rng_state is not None:  # a run continued elsewhere (worker.py): its draws go on from there
            self._gen.set_state(rng_state[0])
            self._eps_gen.set_state(rng_state[1])
        self.x_train = data.x_train.to(self.device)
        self.y_train = data.y_train.to(self.device)
        x_test = data.x_test
        if config.binarize:
            x_test = binarize(x_test, torch.Generator().manual_seed(TEST_BINARIZE_SEED))
        self.x_test = x_test
        self.y_test = data.y_test
        self._snapshot = self._take_snapshot()
        # On the CPU, the intra-op threads are chosen by timing the steps (device.ThreadTuner).
        # Only where the thread count cannot change a single bit of the result (the same seed
        # must give the same model whatever the machine's load): the MLP layers' matrix products
        # and reductions are thread-invariant (tests/test_trainer.py checks it), oneDNN's
        # convolutions are not (they differ in the 8th digit), so conv models keep their threads.
        # Several processes (torchrun) share the cores by a fixed split (device.configure_threads).
        self._tune_threads = (
            tune_threads
            and rank is None
            and self.device.type == "cpu"
            and model.config.arch in THREAD_INVARIANT
        )
        self.thread_tuner: ThreadTuner | None = None  # made by the first run (None on a GPU, for conv)

    def rng_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the batch-order and ε generators are: a run continued with them draws on."""
        return self._gen.get_state(), self._eps_gen.get_state()

    def request_stop(self) -> None:
        """Ask ``run()`` to stop after the current step (thread-safe)."""
        self._stop.set()

    def _take_snapshot(self) -> tuple[dict, dict, int]:
        return (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            copy.deepcopy(self.optimizer.state_dict()),
            self.step,
        )

    def _rollback(self) -> None:
        weights, optim, step = self._snapshot
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(copy.deepcopy(optim))
        self.step = step
        self.progress = None  # the epoch starts again, in a new order

    def run(self, epochs: int | None = None) -> Iterator[StepRecord | EpochRecord | StopRecord]:
        """Train for ``epochs`` (default: the config's) more epochs, yielding records."""
        epochs = self.config.epochs if epochs is None else epochs
        self._stop.clear()
        if self._tune_threads and self.thread_tuner is None:
            self.thread_tuner = ThreadTuner.for_this_machine()
        for _ in range(epochs):
            rec = yield from self._run_epoch()
            if rec is None:
                return

    def _losses(self, idx: torch.Tensor, beta: float) -> tuple[LossTerms, list[float]]:
        """One batch's forward pass and loss: the terms to back-propagate, and the batch's
        loss, reconstruction, KL and KL per level as numbers (global batch means, the same on
        every process). ``idx`` (B,) are the batch's rows of the training set."""
        cfg, model = self.config, self.model
        xb = self.x_train[idx]  # (B, C, H, W)
        if cfg.binarize:  # the whole batch on every process: the same draws as one process
            xb = binarize(xb, self._gen if self.device.type == "cpu" else None)
        yb = self.y_train[idx] if model.config.conditional else None
        shard, noise = None, self._eps_gen
        if self.rank is not None:  # this process's rows, and their ε of the global batch's
            shard = self.rank.shard(len(idx))
            xb = xb[shard.lo : shard.hi]
            yb = None if yb is None else yb[shard.lo : shard.hi]
            noise = ShardedNoise(self._eps_gen, shard)
        amp = contextlib.nullcontext() if self.amp is None else torch.autocast(self.device.type, self.amp)
        with amp:
            out = self._net(xb, yb, noise)
            terms = elbo_loss(xb, out, model.likelihood, beta, cfg.free_bits, model.x_logvar, shard)
        n_lv = len(terms.kl_levels)  # 0 for an autoencoder
        if shard is not None:  # one all-reduce for all the numbers
            parts = torch.stack([terms.loss, terms.recon, terms.kl, *terms.kl_levels]).float()
            return terms, shard.sum_across(parts).tolist()
        loss, rec_v, kl_v = terms.loss.item(), terms.recon.item(), terms.kl.item()
        # One level: its KL is the total (no extra device sync); several: one sync more.
        kl_lv = [kl_v] if n_lv == 1 else torch.stack(terms.kl_levels).tolist() if n_lv else []
        return terms, [loss, rec_v, kl_v, *kl_lv]

    def _part(self, part: str | None) -> str:
        """What the next step trains: ``part`` when asked, else the run's own schedule (encoder-only
        steps before each decoder step while aggressive training lasts, joint steps after)."""
        if part is not None:
            return check_part(part)
        cfg, progress = self.config, self.progress
        if (
            cfg.encoder_steps
            and self.epoch + progress.batches / self._steps_per_epoch < cfg.aggressive_epochs
        ):
            return "encoder" if progress.batches % (cfg.encoder_steps + 1) < cfg.encoder_steps else "decoder"
        return "both"

    def _begin_epoch(self) -> EpochProgress:
        if _params_finite(self.model):
            self._snapshot = self._take_snapshot()
        perm = torch.randperm(len(self.x_train), generator=self._gen).to(self.device)
        self.progress = EpochProgress(perm)
        return self.progress

    def _run_epoch(self):
        """The rest of the epoch (all of it, unless stepping began it): its steps, then its record."""
        progress = self.progress or self._begin_epoch()
        while progress.batches < self._steps_per_epoch:
            if self._stop.is_set():
                yield StopRecord(self.epoch, self.step, "Stopped by the user.", rolled_back=False)
                return None
            if not (yield from self._step(self._part(None))):
                return None
        return (yield from self._finish_epoch())

    def steps(
        self, n: int | None, part: str | None = None
    ) -> Iterator[StepRecord | EpochRecord | StopRecord]:
        """``n`` optimiser steps (the Step and Slow buttons; None: the rest of the epoch in
        progress, or one whole epoch between epochs), each training ``part`` ("both", "encoder",
        "decoder"; None: as a run would), yielding records like ``run``: an epoch that ends on
        the way is evaluated, and ``run`` afterwards goes on from the same batch."""
        check_part(part) if part is not None else None
        self._stop.clear()
        if n is None:
            n = self._steps_per_epoch - (self.progress.batches if self.progress else 0)
        for _ in range(n):
            if self._stop.is_set():
                yield StopRecord(self.epoch, self.step, "Stopped by the user.", rolled_back=False)
                return
            progress = self.progress or self._begin_epoch()
            if not (yield from self._step(self._part(part))):
                return
            if progress.batches >= self._steps_per_epoch:
                yield from self._finish_epoch()

    @property
    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.config.batch_size)

    def _step(self, part: str):
        """One batch of the epoch in progress: its step, trained on ``part``; False when
        ``max_bad_steps`` non-finite steps in a row rolled the weights back (the run ends)."""
        cfg, progress = self.config, self.progress
        i, spe = progress.batches, self._steps_per_epoch
        t0 = time.perf_counter()
        idx = progress.perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        beta = beta_at(cfg, self.epoch + i / spe)
        self._net.train()
        terms, (loss, rec_v, kl_v, *kl_lv) = self._losses(idx, beta)
        self.optimizer.zero_grad(set_to_none=True)
        grad_norm = math.nan
        ok = math.isfinite(loss)  # the global batch's loss: every process decides alike
        if ok:
            # DDP averages the processes' gradients; their shares of the loss add up.
            (terms.loss if self.rank is None else terms.loss * self.rank.world).backward()
            if part != "both":  # the held side gets no gradient, so Adam leaves it and its moments alone
                for q in self.model.side_parameters(inference=part == "decoder"):
                    q.grad = None
            grad_norm = _clip_grad_norm(self._params, self._clip)  # the same on every process
            ok = math.isfinite(grad_norm)
        progress.batches += 1
        if ok:
            self.optimizer.step()
            self.step += 1
            progress.bad_in_row = 0
            progress.add(len(idx), loss, rec_v, kl_v)  # the global batch
        else:
            self.optimizer.zero_grad(set_to_none=True)
            progress.bad_in_row += 1
            progress.skipped += 1
        dt = time.perf_counter() - t0
        progress.seconds += dt
        if self.thread_tuner is not None:
            self.thread_tuner.observe(dt, len(idx))
        yield StepRecord(self.epoch, self.step, loss, rec_v, kl_v, beta, grad_norm, not ok, kl_lv, part)
        if progress.bad_in_row >= cfg.max_bad_steps:
            self._rollback()
            yield StopRecord(
                self.epoch,
                self.step,
                f"The loss or its gradient was not finite for {progress.bad_in_row} steps in a row, so "
                "the weights were rolled back to the start of the epoch and training stopped. "
                "Lower the learning rate, keep gradient clipping on and log-variance clamped.",
                rolled_back=True,
            )
            return False
        return True

    @property
    def _clip(self) -> float:
        return self.config.grad_clip if self.config.grad_clip > 0 else math.inf

    def _finish_epoch(self):
        """The epoch's last batch is done: evaluate on the test set and yield its EpochRecord."""
        progress, n = self.progress, len(self.x_train)
        ev = evaluate(self.model, self.x_test, self.y_test, seed=self.config.seed)
        self.epoch += 1
        self.progress = None
        seen, elapsed = max(progress.seen, 1), progress.seconds
        rec = EpochRecord(
            epoch=self.epoch,
            step=self.step,
            train_loss=progress.loss / seen,
            train_recon=progress.recon / seen,
            train_kl=progress.kl / seen,
            train_neg_elbo=(progress.recon + progress.kl) / seen,
            beta=beta_at(self.config, self.epoch - 1 + (self._steps_per_epoch - 1) / self._steps_per_epoch),
            test_loss=ev.neg_elbo,
            test_recon=ev.recon,
            test_kl=ev.kl,
            test_kl_levels=ev.kl_levels,
            kl_per_dim=ev.kl_per_dim,
            active_units=ev.active_units,
            sharpness=ev.sharpness,
            collapsed=ev.diagnosis.collapsed,
            prior_gap=ev.diagnosis.prior_gap,
            seconds=elapsed,
            images_per_s=n / elapsed if elapsed > 0 else 0.0,
            skipped_steps=progress.skipped,
            mutual_info=ev.mutual_info,
            marginal_kl=ev.marginal_kl,
        )
        self.history.append(rec)
        yield rec
        return rec
