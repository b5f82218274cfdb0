"""A small pool of LiteRT interpreters of one `.tflite` file, so concurrent requests infer side by side.

An interpreter's tensors belong to one caller at a time. With one interpreter
behind a lock (what this replaces), a second request waited for the first
one's inference even with a core idle: two HTTP clients got 1.03x the
throughput of one. Here a caller leases an interpreter only for set, invoke and
get; decoding happens outside the lease, so one image decodes while another
infers (Pillow and LiteRT both release the GIL).

Sizing, measured on this 2-core machine (decode + infer of real photos, images
per second, `python -m bench.run pool`): 2 interpreters x 1 XNNPACK thread give
123-126 for two concurrent callers and for a batch of 16, against 112-115 for
2 x 2 (four threads on two cores) and 98-100 for 1 x 2 (inference serialised);
one lone caller gets 65 from 2 x 1 against 80-92 from 1 x 2 or 2 x 2 (one
thread infers in ~9 ms instead of ~4.5). Hence the pool's first interpreter, the
lead, gets `MODEL_LEAD_THREADS` (default: the cores, at most 2) and a lone caller
always gets it, while the others get `MODEL_THREADS` (default 1), up to
`MODEL_INTERPRETERS` (default: the cores, at most 4): measured, a lone caller
then gets 95 and two callers 113 (`lead 2 + 1` in the pool bench). An
interpreter adds ~40 MB of peak RSS (XNNPACK packs its own copy of the weights;
its activations), so the pool grows only when every interpreter is busy: a
process serving one request at a time keeps one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class Pool:
    """Up to `size` interpreters of the model at `path`: the first (the lead) with `lead_threads` XNNPACK
    threads, the others with `threads`. A lone caller always gets the lead, so one request alone infers on every
    core; concurrent callers get one interpreter each."""

    def __init__(self, path: Path, size: int, threads: int, lead_threads: int | None = None) -> None:
        self.path, self.size, self.threads = path, size, threads
        self._cond = threading.Condition()
        first = self._new(lead_threads or threads)  # a broken file fails at load, not at the first request
        self._lead = first
        self._idle: list[Any] = [first]
        self._made = 1
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
    def _lease(self) -> Iterator[Any]:
        """An interpreter for this caller alone: an idle one, a new one while fewer than `size`, else wait."""
        with self._cond:
            while not self._idle and self._made >= self.size:
                self._cond.wait()
            interpreter = None
            if self._idle:  # the lead when it is free, so a lone caller gets every core
                interpreter = self._lead if self._lead in self._idle else self._idle[-1]
                self._idle.remove(interpreter)
            if interpreter is None:
                self._made += 1
        if interpreter is None:
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
                self._cond.notify()

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
