"""A small pool of LiteRT interpreters of one `.tflite` file, so concurrent requests infer side by side.

An interpreter's tensors belong to one caller at a time. With one interpreter
behind a lock (what this replaces), a second request waited for the first
one's inference even with a core idle: two HTTP clients got 1.03x the
throughput of one. Here a caller leases an interpreter only for set, invoke and
get; decoding happens outside the lease, so one image decodes while another
infers (Pillow and LiteRT both release the GIL).

Sizing (`python -m bench.run pool` measures every shape side by side): two
single-threaded interpreters serve two concurrent callers best, two threads in
one interpreter serve a lone caller best (it infers in half the time), and more
XNNPACK threads than cores lose to both: a descheduled thread holds up the
other threads of its interpreter. Hence the pool's first interpreter, the lead,
gets `MODEL_LEAD_THREADS` (default: the cores, at most 2) and goes only to a
caller that is alone: no other inside `calling()` (around a whole decode +
infer, so a caller decoding counts) and no other interpreter leased. Concurrent
callers get the others, of `MODEL_THREADS` (default 1) each; by default there
is one of those per core besides the lead (`MODEL_INTERPRETERS`: the cores, at
most 4, plus the lead), so no more threads infer than there are cores, and a
caller waits for one of them rather than take the idle lead. With fewer of them
than cores (`MODEL_INTERPRETERS` set low), concurrent callers take the lead too
rather than leave a core idle (`lead 2 + 1` in the pool bench; the default is
`lead 2 + 2` on two cores).

An interpreter adds ~40 MB of peak RSS (XNNPACK packs its own copy of the
weights; its activations), so the pool grows only when no interpreter fits: a
process serving one request at a time keeps one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_NEW = object()  # `_choose`: make an interpreter


class Pool:
    """Up to `size` interpreters of the model at `path`: the first (the lead) with `lead_threads` XNNPACK
    threads, the others with `threads`. A lone caller gets the lead, so one request alone infers on every core;
    concurrent callers get one of the others each."""

    def __init__(self, path: Path, size: int, threads: int, lead_threads: int | None = None,
                 cores: int | None = None) -> None:
        self.path, self.size, self.threads = path, size, threads
        # fewer other interpreters than cores (MODEL_INTERPRETERS set low): concurrent callers take the lead too,
        # rather than wait with a core idle
        self._lead_for_all = size - 1 < (cores or os.cpu_count() or 1)
        self._cond = threading.Condition()
        first = self._new(lead_threads or threads)  # a broken file fails at load, not at the first request
        self._lead = first
        self._idle: list[Any] = [first]
        self._made = 1
        self._callers = 0  # callers inside `calling()`: decoding or inferring
        inp, out = first.get_input_details()[0], first.get_output_details()[0]
        self.input_index, self.output_index = int(inp["index"]), int(out["index"])
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.output_shape = tuple(int(d) for d in out["shape"])

    def _new(self, threads: int | None = None) -> Any:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(self.path), num_threads=threads or self.threads)
        interpreter.allocate_tensors()  # where XNNPACK packs the weights (~13 ms); the first invoke costs no more
        return interpreter

    @property
    def interpreters(self) -> int:
        """How many interpreters the pool holds now."""
        with self._cond:
            return self._made

    @contextmanager
    def calling(self) -> Iterator[None]:
        """Around one caller's whole decode + infer, so that a caller decoding counts as busy: the lead is not
        handed to another meanwhile (its threads would share the cores with the decode)."""
        with self._cond:
            self._callers += 1
        try:
            yield
        finally:
            with self._cond:
                self._callers -= 1

    def _choose(self) -> Any:
        """Under the lock: an idle interpreter for this caller, `_NEW` to make one, or None to wait."""
        others = [interpreter for interpreter in self._idle if interpreter is not self._lead]
        lead_idle = self._lead in self._idle
        alone = self._callers <= 1 and len(self._idle) == self._made
        if lead_idle and (alone or (self._lead_for_all and not others and self._made >= self.size)):
            return self._lead
        if others:
            return others[-1]
        return _NEW if self._made < self.size else None

    @contextmanager
    def _lease(self) -> Iterator[Any]:
        """An interpreter for this caller alone (`_choose`); waits while none is free and the pool is full."""
        with self._cond:
            while (interpreter := self._choose()) is None:
                self._cond.wait()
            if interpreter is _NEW:
                self._made += 1
            else:
                self._idle.remove(interpreter)
        if interpreter is _NEW:
            try:
                interpreter = self._new()
            except BaseException:
                with self._cond:
                    self._made -= 1
                    self._cond.notify()
                raise
        try:
            yield interpreter
        finally:
            with self._cond:
                self._idle.append(interpreter)
                self._cond.notify_all()  # which waiter may take it depends on who is alone

    def run(self, crop: np.ndarray) -> np.ndarray:
        """The model's output row for one HxWx3 crop (uint8 range; the network normalises)."""
        batch = crop[np.newaxis].astype(np.float32)
        with self._lease() as interpreter:
            interpreter.set_tensor(self.input_index, batch)
            interpreter.invoke()
            return np.array(interpreter.get_tensor(self.output_index)[0])

    def warm(self) -> None:
        """One inference on a grey crop, so that nothing left lazily is paid by a request."""
        self.run(np.full(self.input_shape[1:], 128, dtype=np.uint8))
