"""In-process counters and histograms: what each function has done since it started, for the local stack's /metrics.

Deliberately no dependency: a deployed function is one of many Cloud Run
instances that nothing scrapes, and its numbers reach Cloud Monitoring through
its structured log lines (log-based metrics, infra/terraform/monitoring.tf).
The local stack serves every function in one process, so there these numbers
are the whole product's, and `infra/prometheus.py` renders them with
`prometheus_client`. Recording is a dict update under a lock: cheap enough for
every request.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("imageclassify.metrics")

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)
LOADING = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name -> help; counters are exposed with the `_total` suffix
COUNTERS = {
    "requests": "HTTP requests answered, by function and status",
    "events": "CloudEvents handled, by function and outcome",
    "images_classified": "Images classified (one token each), by the function that classified them",
    "tokens_spent": "Tokens charged (reserved, before any refund)",
    "tokens_refunded": "Tokens given back (failed images, unused reservations, failed runs)",
    "dead_letters_handled": "Queue messages that exhausted their deliveries and were failed and refunded, by kind",
    "dead_letters_refused": "Messages on the dead-letter endpoint that we did not send (unsigned or unknown shape)",
}
# name -> (help, bucket upper bounds)
HISTOGRAMS = {
    "request_duration_seconds": ("Time to answer an HTTP request, by function", LATENCY),
    "job_duration_seconds": ("Time from a sort job's creation to its final state, by final status", DURATION),
    "training_duration_seconds": ("Time from a training run's creation to its final state, by final status",
                                  DURATION),
    "model_load_seconds": ("Time to load a model on its first use in a process, by model", LOADING),
}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


_lock = threading.Lock()
_counters: dict[tuple[str, Labels], float] = {}
_histograms: dict[tuple[str, Labels], Histogram] = {}
_seen: set[str] = set()


def _labels(labels: dict[str, object]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def count(name: str, amount: float = 1, **labels: object) -> None:
    if name not in COUNTERS:
        raise KeyError(f"unknown counter {name}")
    if amount:
        key = (name, _labels(labels))
        with _lock:
            _counters[key] = _counters.get(key, 0) + amount


def observe(name: str, value: float, **labels: object) -> None:
    key = (name, _labels(labels))
    with _lock:
        _histograms.setdefault(key, Histogram(HISTOGRAMS[name][1])).observe(max(0.0, value))


def snapshot() -> tuple[dict[tuple[str, Labels], float], dict[tuple[str, Labels], Histogram]]:
    """Copies of every counter and histogram, for rendering."""
    with _lock:
        return dict(_counters), {k: Histogram(h.bounds, list(h.counts), h.total) for k, h in _histograms.items()}


def first_use(what: str, load: Callable[[], T]) -> T:
    """`load()`, timed as `model_load_seconds` the first time `what` is asked for in this process (a cold load;
    later calls find it loaded and are not timed)."""
    if what in _seen:
        return load()
    started = time.perf_counter()
    value = load()  # a failed load (e.g. an unknown name) raises before `what` is remembered
    with _lock:
        first = what not in _seen
        _seen.add(what)
    if first:
        observe("model_load_seconds", time.perf_counter() - started, model=what)
    return value


def finished(kind: str, status: str, created: float, **fields: object) -> None:
    """A job (`job`) or training run (`training`) reached a final state: its duration, observed and logged."""
    seconds = max(0.0, time.time() - created) if created else 0.0
    observe(f"{kind}_duration_seconds", seconds, status=status)
    log.info("%s finished: %s after %.1fs", kind, status, seconds,
             extra={"event": f"{kind}_finished", "status": status, "seconds": round(seconds, 3), **fields})


def reset() -> None:
    """Forget everything (tests)."""
    with _lock:
        _counters.clear()
        _histograms.clear()
        _seen.clear()
