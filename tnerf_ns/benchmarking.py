"""Timing and memory measurement shared by the benchmark scripts and ``scripts/gpu_check.py``.

Medians of wall-clock time synchronised with the CUDA device, one-shot timings, peak memory of a block (CUDA: the
allocator's peak; CPU: the process RSS, sampled) and a one-line description of the machine. Depends only on torch,
psutil (imported when a CPU measurement needs it) and the standard library, so it imports without nerfstudio.
"""

from __future__ import annotations

import gc
import platform
import statistics
import threading
import time
from typing import Callable, Optional, Tuple, Union

import torch

DeviceLike = Union[str, torch.device]


def synchronize(device: DeviceLike) -> None:
    """Wait until the device has run all queued work (a no-op off CUDA)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


LONG_CALL_SECONDS = 2.0
"""A call slower than this is timed once: a median of several guards short calls against jitter that a long call
averages out on its own, and on the CPU each extra VGGT-1B or 800x800 call costs tens of seconds."""


def median_seconds(
    fn: Callable[[], object],
    device: DeviceLike,
    repeats: int,
    warmup: int = 0,
    long_call: float = LONG_CALL_SECONDS,
    warmed_seconds: float = 0.0,
) -> float:
    """Median wall-clock seconds of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones.

    Each timed call is synchronised with the device before and after, so queued CUDA work is counted in full. When the
    last warm-up call took longer than ``long_call`` seconds, one timed call is made instead of ``repeats``;
    ``warmed_seconds`` is the time of a warm-up call the caller already made (``timed``).
    """
    last = warmed_seconds
    for _ in range(warmup):
        with Stopwatch(device) as watch:
            fn()
        last = watch.seconds
    if last > long_call:
        repeats = min(repeats, 1)
    times = []
    for _ in range(repeats):
        with Stopwatch(device) as watch:
            fn()
        times.append(watch.seconds)
    return statistics.median(times)


class Stopwatch:
    """Wall-clock seconds of one block or span, synchronised with the device at its start and end.

    ``with Stopwatch(device) as watch: ...`` then ``watch.seconds``; or ``watch = Stopwatch().start()`` and read
    ``watch.seconds`` (the time so far while running) or ``watch.stop()``.
    """

    def __init__(self, device: DeviceLike = "cpu") -> None:
        self.device = torch.device(device)
        self._start: Optional[float] = None
        self._end: Optional[float] = None

    def start(self) -> "Stopwatch":
        """Synchronise the device and start (or restart) the watch."""
        synchronize(self.device)
        self._start, self._end = time.perf_counter(), None
        return self

    def stop(self) -> float:
        """Synchronise the device, stop the watch and return its seconds."""
        synchronize(self.device)
        self._end = time.perf_counter()
        return self.seconds

    @property
    def seconds(self) -> float:
        """Seconds from start to stop, or to now while the watch runs."""
        if self._start is None:
            raise RuntimeError("the stopwatch was never started")
        return (self._end if self._end is not None else time.perf_counter()) - self._start

    def __enter__(self) -> "Stopwatch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def set_glibc_mmap_threshold(nbytes: int) -> None:
    """glibc M_MMAP_THRESHOLD: blocks above it are mmapped, so freeing them returns memory to the OS at once.

    A low threshold makes process RSS follow live tensor memory (otherwise glibc keeps freed blocks and RSS-based peaks
    read as zero after the first run) but costs page faults, so it is only set while memory is measured.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, nbytes)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a block above what was allocated before it (weights, inputs).

    CUDA: the allocator's peak; CPU: the process RSS peak, sampled every 5 ms (``measure_cpu=False``: not measured,
    zeros). After the block, ``peak_bytes`` is the peak above the memory at its start and ``total_peak_bytes`` the
    peak itself (CUDA: including what was allocated before the block).
    """

    def __init__(self, device: DeviceLike, measure_cpu: bool = True) -> None:
        self.device = torch.device(device)
        self.measure_cpu = measure_cpu
        self.peak_bytes = 0
        self.total_peak_bytes = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()  # weights and inputs; the peak is reported above it
        elif self.measure_cpu:
            import psutil

            set_glibc_mmap_threshold(128 * 1024)
            self._proc = psutil.Process()
            self._base = self._proc.memory_info().rss
            self._peak = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.total_peak_bytes = torch.cuda.max_memory_allocated()
            self.peak_bytes = self.total_peak_bytes - self._base
        elif self.measure_cpu:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self.total_peak_bytes = self._peak
            self.peak_bytes = self._peak - self._base
            set_glibc_mmap_threshold(32 * 1024 * 1024)  # glibc's largest dynamic threshold: fast reuse again


def timed(fn: Callable[[], object], device: DeviceLike, warmup: int, repeats: int) -> Tuple[float, int]:
    """Median seconds of ``fn`` over ``repeats`` calls after ``warmup`` ones, and the peak memory (bytes above the
    memory allocated before) of the first call, which is also the first warm-up call (``median_seconds``'s rule for
    long calls applies to it)."""
    gc.collect()
    with PeakMemory(device) as mem, Stopwatch(device) as watch:
        fn()
    return median_seconds(fn, device, repeats, max(warmup - 1, 0), warmed_seconds=watch.seconds), mem.peak_bytes


def describe_machine(device: DeviceLike) -> str:
    """One line naming what ``device`` runs on: the GPU and CUDA version, or the CPU, its threads and memory."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    import psutil

    return (
        f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, torch {torch.__version__}"
    )
