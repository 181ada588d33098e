"""tnerf_ns.benchmarking: the timing and memory helpers of the benchmark scripts, on the CPU."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO

from tnerf_ns.benchmarking import PeakMemory, Stopwatch, describe_machine, median_seconds, timed

MB = 1 << 20


def sleeper(seconds: float):
    calls = []

    def fn() -> None:
        calls.append(1)
        time.sleep(seconds)

    return fn, calls


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_median_seconds_times_a_known_sleep_after_the_warmup(device):
    fn, calls = sleeper(0.02)
    seconds = median_seconds(fn, device, repeats=3, warmup=2)
    assert 0.02 <= seconds < 0.2
    assert len(calls) == 5  # 2 untimed warm-up calls, 3 timed


def test_median_seconds_ignores_one_slow_call():
    delays = iter([0.3, 0.01, 0.01])
    seconds = median_seconds(lambda: time.sleep(next(delays)), "cpu", repeats=3)
    assert 0.01 <= seconds < 0.2


def test_stopwatch_times_a_block_and_a_running_span():
    with Stopwatch("cpu") as watch:
        time.sleep(0.02)
    assert 0.02 <= watch.seconds < 0.2
    frozen = watch.seconds
    time.sleep(0.01)
    assert watch.seconds == frozen  # stopped at the end of the block
    running = Stopwatch().start()
    first = running.seconds
    time.sleep(0.01)
    assert running.seconds >= first + 0.01
    assert running.stop() >= 0.01
    with pytest.raises(RuntimeError):
        _ = Stopwatch().seconds


def test_peak_memory_on_cpu_sees_a_short_lived_allocation():
    with PeakMemory(torch.device("cpu")) as mem:
        x = torch.ones(256 * MB // 4)  # 256 MiB of float32, every page written
        time.sleep(0.05)  # outlives several 5 ms samples
        del x
    assert mem.peak_bytes > 200 * MB
    assert mem.total_peak_bytes >= mem.peak_bytes
    with PeakMemory("cpu", measure_cpu=False) as off:
        torch.ones(64 * MB // 4)
    assert off.peak_bytes == off.total_peak_bytes == 0


def test_timed_returns_median_seconds_and_peak_bytes():
    fn, calls = sleeper(0.01)
    seconds, peak = timed(fn, "cpu", warmup=1, repeats=2)
    assert 0.01 <= seconds < 0.2 and isinstance(peak, int)
    assert len(calls) == 3  # one under PeakMemory (the warm-up), 2 timed


def test_a_long_call_is_timed_once():
    fn, calls = sleeper(0.05)
    assert 0.05 <= median_seconds(fn, "cpu", repeats=3, warmup=1, long_call=0.01) < 0.5
    assert len(calls) == 2  # warm-up, then one timed call instead of three
    fn, calls = sleeper(0.05)
    median_seconds(fn, "cpu", repeats=3, warmup=1, long_call=10.0)
    assert len(calls) == 4


def test_describe_machine_names_the_cpu():
    assert describe_machine("cpu").startswith("CPU ") and "torch" in describe_machine(torch.device("cpu"))


def test_imports_without_nerfstudio():
    code = "import sys; sys.modules['nerfstudio'] = None; import tnerf_ns.benchmarking"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
