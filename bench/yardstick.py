"""The machine's limit for a path: the same work done by two concurrent callers in this process.

Decode + infer with both cores busy (two threads on the interpreter pool) is
what this machine can do; a path through the stack (a sort job, a training
run's embedding) is quoted as a ratio to it, measured in the same run on the
same images. The figure is taken before and after the path's own run and
averaged, so that what other processes do to the cores meanwhile falls on both
sides alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def two_callers(work: Callable[[T], object], items: Sequence[T], seconds: float = 4.0) -> float:
    """Items per second of `work` called by two threads at once, each going round `items` from its own end,
    for about `seconds` (after one warm-up call each)."""
    for item in items[:2]:
        work(item)
    counts = [0, 0]
    deadline = time.perf_counter() + seconds

    def caller(index: int) -> None:
        order = items if index == 0 else list(reversed(items))
        while time.perf_counter() < deadline:
            work(order[counts[index] % len(order)])
            counts[index] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def around(measure: Callable[[], float], run: Callable[[], T]) -> tuple[T, float]:
    """`run()`'s result and the mean of `measure()` taken just before and just after it."""
    before = measure()
    result = run()
    return result, (before + measure()) / 2
