"""Where the model runs: the device (a GPU when there is one) and the CPU threads it may use."""

from __future__ import annotations

import os

import torch


def select_device(prefer: str | None = None) -> torch.device:
    """CUDA when a GPU is there (or asked for), else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads() -> int:
    """Use the cores this process may run on (a container often has fewer than the host)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    n = max(1, min(n, 8))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
