"""Where the model runs: the device (a GPU when there is one) and the CPU threads it may use."""

from __future__ import annotations

import os

import torch


def select_device(prefer: str | None = None) -> torch.device:
    """CUDA when a GPU is there, else CPU; ``prefer`` ("cpu", "cuda", "cuda:1") asks for one."""
    if not prefer:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError):
        raise ValueError(f"the device must be cpu or cuda (or cuda:N), got {str(prefer)[:40]!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("the device cuda was asked for, but PyTorch sees no GPU here; use cpu.")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"the device must be cpu or cuda (or cuda:N), got {str(prefer)[:40]!r}.")
    return device


def usable_cores() -> int:
    """The cores this process may run on (a container often has fewer than the host), at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def fixed_threads() -> int | None:
    """``VAE_EXPLORER_THREADS``: a whole number fixes the intra-op threads (no tuning); unset or
    "auto" lets each training run choose by measuring (ThreadTuner)."""
    raw = os.environ.get("VAE_EXPLORER_THREADS", "").strip().lower()
    if raw in ("", "auto"):
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        raise ValueError(
            f"VAE_EXPLORER_THREADS must be auto or a whole number from 1 to 256, got {raw[:40]!r}."
        )
    return int(raw)


def configure_threads(processes: int = 1) -> int:
    """Use the cores this process may run on (or VAE_EXPLORER_THREADS); a training run then
    tunes its own (ThreadTuner). ``processes`` training side by side on this machine (torchrun)
    split its cores between them, so that none waits for a core another one holds."""
    n = fixed_threads() or max(1, usable_cores() // max(1, processes))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class ThreadTuner:
    """Chooses a training loop's intra-op threads by measuring them, while it runs.

    On a quiet 2-core machine two threads train fastest; beside one other busy process they are
    several times slower than one thread (each parallel op waits for its slower half, whose core
    is shared), and a Space's or a laptop's neighbours come and go. So the loop times its steps:
    it tries each candidate for ``window`` steps, keeps the fastest, and tries again after
    ``every`` steps or as soon as two windows in a row run ``slower`` times slower than the choice
    did. Times are per image, so the last, smaller batch of an epoch compares fairly; the run's
    first ``warmup`` steps (allocator, caches) and the first step after a switch are not counted.
    """

    def __init__(
        self,
        candidates: tuple[int, ...],
        window: int = 6,
        every: int = 300,
        slower: float = 1.4,
        warmup: int = 6,
    ):
        self.candidates = tuple(dict.fromkeys(c for c in candidates if c >= 1)) or (1,)
        self.window = window  # steps timed per candidate and per check
        self.every = every  # steps between two probes when nothing changed
        self.slower = slower  # this much slower than the choice's own time: probe again
        self.choice = self.candidates[0]  # the thread count in use after probing
        self.times: dict[int, float] = {}  # candidate → its median seconds per image when probed
        self._queue: list[int] = list(self.candidates)  # candidates still to probe
        self._recent: list[float] = []  # seconds per image of the current window
        self._since = 0  # steps since the last probe ended
        self._slow = 0  # windows in a row slower than the choice's probe by ``slower``
        self._use(self._queue[0])
        self._skip = warmup  # steps still to pass uncounted

    @classmethod
    def for_this_machine(cls) -> ThreadTuner:
        """All usable cores against one thread; only VAE_EXPLORER_THREADS when it is set."""
        fixed = fixed_threads()
        if fixed is not None:
            return cls((fixed,))
        n = usable_cores()
        return cls((n, 1) if n > 1 else (1,))

    def _use(self, n: int) -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
            self._skip = 1  # the first step after a switch pays for it

    def observe(self, seconds: float, images: int) -> None:
        """One training step took ``seconds`` for ``images`` images."""
        if len(self.candidates) == 1 or images <= 0:
            return
        if self._skip > 0:
            self._skip -= 1
            return
        self._recent.append(seconds / images)
        if len(self._recent) < self.window:
            return
        median = sorted(self._recent)[len(self._recent) // 2]
        self._recent = []
        if self._queue:  # probing: this window timed the candidate at the head of the queue
            self.times[self._queue.pop(0)] = median
            if self._queue:
                self._use(self._queue[0])
                return
            self.choice = min(self.times, key=self.times.get)
            self._since = 0
            self._use(self.choice)
            return
        self._since += self.window
        self._slow = self._slow + 1 if median > self.slower * self.times[self.choice] else 0
        if self._since >= self.every or self._slow >= 2:
            self._slow = 0
            self._queue = [self.choice, *(c for c in self.candidates if c != self.choice)]
            self._use(self._queue[0])


def amp_dtype(device: torch.device, on: bool) -> torch.dtype | None:
    """The autocast dtype of ``--amp``: bfloat16 on a GPU that has it (no loss scaling needed,
    float32's range); ``None`` when off. The CPU trains in float32 (its bfloat16 is slower)."""
    if not on:
        return None
    if device.type != "cuda":
        raise ValueError("--amp needs a GPU (--device cuda); on the CPU the model trains in float32.")
    if not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16, which --amp uses; train without --amp.")
    return torch.bfloat16
