"""One function over many items on a few threads, results in order: how a batch uses every core.

A batch request's images decode and infer side by side (Pillow and LiteRT
release the GIL), one per interpreter of the pool, so a batch of 16 runs
about as fast as the cores allow instead of one image after another. Items are
taken from the iterable only as workers free up (at most twice the workers
ahead), so image bytes read lazily stay bounded in memory whatever the batch
size. Each call has its own threads: a slow item (a URL fetch) never holds up
another request's batch. Work whose items are all alike (a queue worker's batch of images) may share one
process-wide pool instead (`shared`): its threads, and what each keeps (a database connection), outlive the call,
and concurrent batches together keep only that many items in flight.

Why not one inference on a batch tensor (`resize_tensor_input`)? Measured on 2
cores: the CPU time per image is no lower (9.0 ms at batch 1 and 4, 10.8 at 16:
every layer is already a large GEMM at batch 1, and 16 images' activations
spill the caches), each new batch size costs 10-360 ms of XNNPACK set-up, a
batch-16 interpreter holds 110 MB more, and the images would still be decoded
one by one before it. Spread over the pool, the crops give bit-identical
outputs and their decoding overlaps the inference.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

from common.core import errors

T = TypeVar("T")
R = TypeVar("R")


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def shared(threads: int) -> ThreadPoolExecutor:
    """The process's pool of `threads` threads, started once and kept."""
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="shared")
        return _pools[threads]


def ordered_map(fn: Callable[[T], R], items: Iterable[T], threads: int,
                executor: Executor | None = None) -> Iterator[R]:
    """fn(item) for each item, in the items' order, on up to `threads` threads (callers pass the size of the
    pool the work needs: more threads would only queue for its interpreters).

    An exception from fn is raised where its result would be yielded; work not yet started is dropped. One
    item (a request with one image) runs in the caller's thread: no thread is started for it."""
    if threads <= 1 or (isinstance(items, Sized) and len(items) <= 1):
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    own = executor is None
    executor = executor or ThreadPoolExecutor(threads, thread_name_prefix="model")
    try:
        for item in items:
            pending.append(executor.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
        else:  # a shared pool runs on: only this call's work not yet started is dropped
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    future.exception()


def outcomes(fn: Callable[[T], R], items: Iterable[T], threads: int) -> list[R | errors.AppError]:
    """fn over the items in parallel, each item's `AppError` (an undecodable image ...) as its result."""

    def one(item: T) -> R | errors.AppError:
        try:
            return fn(item)
        except errors.AppError as exc:
            return exc

    return list(ordered_map(one, items, threads))
