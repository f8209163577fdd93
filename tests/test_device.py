"""Where the model runs (vae_explorer/device.py): the device asked for, or a GPU when there is
one, with a clear ValueError for a name that is not a device here; and the CPU threads used."""

from __future__ import annotations

import os

import pytest
import torch

from vae_explorer.device import ThreadTuner, configure_threads, select_device


def test_cpu_is_cpu_and_no_preference_is_a_gpu_only_when_there_is_one():
    assert select_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    assert select_device() == expected and select_device(None) == expected and select_device("") == expected


@pytest.mark.parametrize("name", ["gpu", "banana", "cuda:x", "mps", "meta"])
def test_a_name_that_is_not_cpu_or_cuda_is_a_value_error(name):
    with pytest.raises(ValueError, match=rf"the device must be cpu or cuda \(or cuda:N\), got '{name}'\."):
        select_device(name)


def test_a_long_bad_name_is_cut_short_in_the_message():
    with pytest.raises(ValueError, match=r"got 'x{40}'\.$"):
        select_device("x" * 5000)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_asking_for_cuda_without_a_gpu_says_so(name):
    with pytest.raises(ValueError, match=r"PyTorch sees no GPU here; use cpu"):
        select_device(name)


def test_configure_threads_uses_the_cores_this_process_may_run_on():
    before = torch.get_num_threads()
    try:
        n = configure_threads()
        assert n == torch.get_num_threads()
        if hasattr(os, "sched_getaffinity"):
            assert n == max(1, min(len(os.sched_getaffinity(0)), 8))
        assert 1 <= n <= 8
    finally:
        torch.set_num_threads(before)


class _Threads:
    """torch's intra-op thread setting, watched: the tuner is driven with made-up step times."""

    def __init__(self, monkeypatch):
        self.n, self.changes = 2, []
        monkeypatch.setattr(torch, "get_num_threads", lambda: self.n)
        monkeypatch.setattr(torch, "set_num_threads", self._set)

    def _set(self, n):
        self.n = n
        self.changes.append(n)


def _drive(tuner, threads, seconds_per_step: dict, steps: int) -> None:
    """``steps`` steps of 128 images whose time depends on the thread count in use."""
    for _ in range(steps):
        tuner.observe(seconds_per_step[threads.n], 128)


def test_the_tuner_keeps_two_threads_on_a_quiet_machine(monkeypatch):
    threads = _Threads(monkeypatch)
    tuner = ThreadTuner((2, 1), window=4, every=100)
    _drive(tuner, threads, {2: 0.010, 1: 0.016}, 40)  # quiet: two threads are faster
    assert tuner.choice == 2 and threads.n == 2
    assert tuner.times[2] == pytest.approx(0.010 / 128) and tuner.times[1] == pytest.approx(0.016 / 128)


def test_the_tuner_moves_to_one_thread_when_a_neighbour_starts_and_back_when_it_ends(monkeypatch):
    threads = _Threads(monkeypatch)
    tuner = ThreadTuner((2, 1), window=4, every=60, slower=1.4)
    _drive(tuner, threads, {2: 0.010, 1: 0.016}, 20)
    assert threads.n == 2
    # A busy neighbour: two threads become 3.6× slower, one thread barely changes. Two slow
    # windows in a row set off a new probe at once, long before ``every`` steps.
    _drive(tuner, threads, {2: 0.036, 1: 0.017}, 20)
    assert tuner.choice == 1 and threads.n == 1
    # The neighbour leaves: the periodic probe finds two threads faster again.
    _drive(tuner, threads, {2: 0.010, 1: 0.016}, 100)
    assert tuner.choice == 2 and threads.n == 2


def test_each_switch_skips_the_step_that_pays_for_it_and_the_last_small_batch_compares_per_image(monkeypatch):
    threads = _Threads(monkeypatch)
    tuner = ThreadTuner((2, 1), window=3, every=1000, warmup=2)
    tuner.observe(9.0, 128)  # the run's first two steps: not counted
    tuner.observe(9.0, 128)
    for _ in range(3):
        tuner.observe(0.010, 128)
    assert tuner.times == {2: pytest.approx(0.010 / 128)} and threads.n == 1
    tuner.observe(9.0, 128)  # the switch to one thread: not counted either
    for images in (128, 128, 32):  # an epoch's last batch is smaller: the same time per image
        tuner.observe(0.016 * images / 128, images)
    assert tuner.times[1] == pytest.approx(0.016 / 128) and tuner.choice == 2


def test_one_core_means_nothing_to_tune(monkeypatch):
    threads = _Threads(monkeypatch)
    threads.n = 1
    tuner = ThreadTuner((1,))
    _drive(tuner, threads, {1: 0.01}, 50)
    assert threads.changes == [] and tuner.choice == 1


def test_one_slow_window_is_noise_and_two_in_a_row_set_off_a_probe(monkeypatch):
    threads = _Threads(monkeypatch)
    tuner = ThreadTuner((2, 1), window=4, every=1000, warmup=0)
    quiet, busy = {2: 0.010, 1: 0.016}, {2: 0.036, 1: 0.017}
    _drive(tuner, threads, quiet, 18)  # probes (4 + 1 + 4 steps), the switch back, two windows
    switches = len(threads.changes)
    _drive(tuner, threads, busy, 4)  # one slow window (a hiccup) ...
    _drive(tuner, threads, quiet, 8)  # ... then quiet again: no probe
    assert len(threads.changes) == switches and threads.n == 2
    _drive(tuner, threads, busy, 8 + 4 + 1 + 4)  # two slow windows, then both re-timed
    assert tuner.choice == 1 and threads.n == 1 and tuner.times[2] == pytest.approx(0.036 / 128)


def test_vae_explorer_threads_fixes_the_threads_or_leaves_them_to_the_tuner(monkeypatch):
    from vae_explorer.device import usable_cores

    monkeypatch.setenv("VAE_EXPLORER_THREADS", "1")
    assert ThreadTuner.for_this_machine().candidates == (1,)
    monkeypatch.setenv("VAE_EXPLORER_THREADS", "auto")
    n = usable_cores()
    assert ThreadTuner.for_this_machine().candidates == ((n, 1) if n > 1 else (1,))
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv("VAE_EXPLORER_THREADS", bad)
        with pytest.raises(ValueError, match=r"^VAE_EXPLORER_THREADS must be auto or a whole number"):
            ThreadTuner.for_this_machine()
