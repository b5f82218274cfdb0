"""A per-process budget of pixels being decoded at once: large images take turns, photos never wait.

Decoders allocate the whole image before a pixel is used (only JPEG decodes at
a reduced scale), so a 40-million-pixel PNG holds up to four bytes a pixel
while it is decoded and cropped. Eight at once held over a gigabyte. Here an
image of LARGE_PIXELS or more (as it will be decoded: after JPEG's reduction)
holds its pixel count from a budget of the largest image accepted, and waits
while the budget is spent; a smaller image, which is any photo, never touches
the gate and never waits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import lru_cache

LARGE_PIXELS = 4_000_000


class DecodeGate:
    """A weighted semaphore of pixels, with counters a test can read (no timing needed)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._turns = threading.Condition()
        self.held = 0  # pixels of the large decodes running now
        self.running = self.waiting = 0  # large decodes running now, and waiting for their turn
        self.peak_held = self.peak_running = 0
        self.passed = 0  # small decodes let through without waiting

    @contextlib.contextmanager
    def decoding(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` of the budget while the block decodes (at most the whole budget: any image accepted
        gets its turn)."""
        if pixels < LARGE_PIXELS:
            with self._turns:
                self.passed += 1
            yield
            return
        weight = min(pixels, self.budget)
        with self._turns:
            self.waiting += 1
            try:
                self._turns.wait_for(lambda: self.held + weight <= self.budget)
            finally:
                self.waiting -= 1
            self.held += weight
            self.running += 1
            self.peak_held, self.peak_running = max(self.peak_held, self.held), max(self.peak_running, self.running)
        try:
            yield
        finally:
            with self._turns:
                self.held -= weight
                self.running -= 1
                self._turns.notify_all()


@lru_cache(maxsize=4)
def gate(budget: int) -> DecodeGate:
    """The process's gate for a budget (one per MAX_IMAGE_PIXELS setting)."""
    return DecodeGate(budget)
