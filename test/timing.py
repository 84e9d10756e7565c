"""Per-stage wall-clock times of the test-time pipeline (preparation, first
look, network, decoding, centre check, NMS, classification), summed over a split and printed at the end of
test.py, so a slow stage is visible at a glance.

On a GPU the network runs asynchronously: a stage that launches GPU work is
timed up to a device synchronisation (`sync`), otherwise its time would be
charged to whichever later stage first waits for the result.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

import torch


def device_sync(device) -> Callable[[], None]:
    """A function that waits for `device`'s queued work (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class StageTimer:
    """Sums the seconds spent in each named stage and counts the images."""

    # "first look": the whole detection of a page at the scale that measures
    # its objects (test/scales.py), before the network at the chosen scale
    STAGES = ("preparation", "first look", "network", "decoding", "centre check", "nms",
              "classification")

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync = sync
        self.seconds = {name: 0.0 for name in self.STAGES}
        self.images = 0

    @contextmanager
    def stage(self, name: str, synchronize: bool = False):
        start = time.perf_counter()
        try:
            yield
        finally:
            if synchronize:
                self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def add(self, name: str, seconds: float):
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def report(self) -> str:
        """A small table: total and per-image milliseconds for every stage."""
        images = max(self.images, 1)
        total = sum(self.seconds.values())
        lines = [f"time per stage over {self.images} images:"]
        for name, seconds in self.seconds.items():
            lines.append(f"  {name:<13} {seconds:9.2f} s  {1000 * seconds / images:9.1f} ms/image")
        lines.append(f"  {'total':<13} {total:9.2f} s  {1000 * total / images:9.1f} ms/image")
        return "\n".join(lines)
