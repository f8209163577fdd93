"""Training on several processes at once, started by ``torchrun`` (one machine or several).

Each process holds the whole data set in memory and the same model. Every step, all processes
draw the same global batch from the same seeded permutation; each takes its own rows of it (its
shard), and DistributedDataParallel averages the gradients. The loss is written so that the
averaged gradient *is* the gradient of the global batch's loss, the NaN guard sees the global
batch's loss, and the noise ε of each image is the one a single process would have drawn for
it: the same seed and batch size give the same model on 1 or N processes (up to float rounding).

torchrun tells each process who it is through the environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, and MASTER_ADDR/PORT for the rendezvous); gloo carries the sums on the CPU,
NCCL on GPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .device import select_device


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number (torchrun sets it), got {raw[:40]!r}.")
    return int(raw)


def local_world_size() -> int:
    """Processes started on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun):
    they share its cores."""
    return max(1, _env_int("LOCAL_WORLD_SIZE", 1))


def _sum_across(t: torch.Tensor) -> torch.Tensor:
    """All processes' ``t`` summed (an all-reduce), on a detached copy: (…) → (…)."""
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@dataclass(frozen=True)
class BatchShard:
    """This process's rows ``[lo, hi)`` of a global batch of ``rows`` images.

    A mean over the global batch is the sum over processes of each one's share
    Σ_{i in shard} v_i / rows, which is how the loss is computed on a shard (loss.elbo_loss)."""

    rows: int  # images in the global batch
    lo: int  # this process's first row
    hi: int  # one past its last row (lo == hi: no rows in a short last batch)
    # the sum across processes of a tensor, e.g. the free-bits clamp's batch-mean KL per dimension
    sum_across: Callable[[torch.Tensor], torch.Tensor]

    def share(self, t: torch.Tensor) -> torch.Tensor:
        """This shard's part of the global batch mean over dim 0: (b, …) → (…)."""
        return t.sum(dim=0) / self.rows


class ShardedNoise:
    """ε for a shard: drawn for the whole global batch from the generator every process holds
    in the same state, then this shard's rows kept, so that each image gets the ε a single
    process would have given it. Passed where a model takes its ``generator``."""

    def __init__(self, generator: torch.Generator, shard: BatchShard) -> None:
        self.generator = generator  # seeded alike on every process
        self.shard = shard

    def randn(self, shape: torch.Size, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(hi − lo, *shape[1:]) standard normal draws: this shard's rows of (rows, *shape[1:])."""
        full = torch.randn(
            (self.shard.rows, *shape[1:]), generator=self.generator, device=device, dtype=dtype
        )
        return full[self.shard.lo : self.shard.hi]


@dataclass(frozen=True)
class Rank:
    """Where this process stands among the processes training together."""

    rank: int  # 0 … world − 1; rank 0 alone writes the checkpoint and prints
    world: int  # processes training together
    local_rank: int  # this process on its machine (which GPU it uses)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: int) -> BatchShard:
        """This process's rows of a global batch of ``rows``: near-equal parts, the first
        ``rows % world`` processes one row more (as ``torch.tensor_split``)."""
        base, extra = divmod(rows, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return BatchShard(rows, lo, lo + base + (self.rank < extra), _sum_across)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as DistributedDataParallel: gradients averaged across processes in backward,
        rank 0's weights copied to all at the start."""
        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (a download, a cache written), the others after it."""
        if not self.is_main:
            dist.barrier()
        yield
        if self.is_main:
            dist.barrier()


def setup(prefer: str | None = None) -> tuple[Rank | None, torch.device]:
    """Join torchrun's processes when there are several (else ``None``: one process, nothing
    changes), and the device this process trains on: its own GPU ``cuda:LOCAL_RANK`` on a GPU
    box, else the CPU."""
    world = _env_int("WORLD_SIZE", 1)
    device = select_device(prefer)
    if world <= 1:
        return None, device
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"process {local_rank} on this machine has no GPU of its own: "
                f"{torch.cuda.device_count()} GPUs, so start at most that many (--nproc-per-node)."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Rank(rank, world, local_rank), device


def teardown() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_initialized():
        dist.destroy_process_group()
