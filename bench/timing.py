"""Timing a benchmark: the one helper every bench/ script times with.

    seconds = median_seconds(fn, repeat=5, warmup=1)              # on the CPU
    seconds = median_seconds(fn, repeat=5, warmup=1, sync=device_sync(device))

The warm-up calls are not timed (oneDNN and cuDNN pick their kernels on the
first call, the allocator grows); each timed call is measured on its own
and the median taken, which shared, noisy machines disturb least. With a
`sync` (test/timing.py `device_sync`), the device's queued work is waited
for after the warm-up and after each call, so a GPU's asynchronous work is
charged to the call that launched it.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 1,
                   sync: Callable[[], None] | None = None) -> float:
    """Median wall-clock seconds of `repeat` calls of `fn` after `warmup` untimed calls."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
