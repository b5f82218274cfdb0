"""The local stack's `/metrics` (Prometheus text) and aggregated `/healthz`.

The counters live in `common.core.metrics`, dependency-free, because a deployed
function is never scraped (its numbers reach Cloud Monitoring as log-based
metrics). The local stack runs every function in this one process, so their
counters are the product's, and `prometheus_client` renders them here, with the
queue's depth read at scrape time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from common.core import metrics

PREFIX = "imageclassify_"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


class ProductCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        counters, histograms = metrics.snapshot()
        for name, help_text in metrics.COUNTERS.items():
            samples = [(labels, value) for (n, labels), value in counters.items() if n == name]
            counter = CounterMetricFamily(PREFIX + name, help_text, labels=_names(samples))
            for labels, value in samples:
                counter.add_metric([v for _, v in labels], value)
            yield counter
        for name, (help_text, _) in metrics.HISTOGRAMS.items():
            observed = [(labels, h) for (n, labels), h in histograms.items() if n == name]
            histogram = HistogramMetricFamily(PREFIX + name, help_text, labels=_names(observed))
            for labels, h in observed:
                cumulative, buckets = 0, []
                for bound, count in zip([*map(str, h.bounds), "+Inf"], h.counts, strict=True):
                    cumulative += count
                    buckets.append((bound, float(cumulative)))
                histogram.add_metric([v for _, v in labels], buckets, h.total)
            yield histogram
        yield from _queue()


def _names(samples: list[tuple[metrics.Labels, Any]]) -> list[str]:
    return [k for k, _ in samples[0][0]] if samples else []


def _queue() -> Iterator[Metric]:
    """The embedded queue's depth (other backends are watched in their own console)."""
    from common.adapters.backends import get_queue

    depth = getattr(get_queue(), "depth", None)
    if depth is None:
        return
    live, dead = depth()
    yield GaugeMetricFamily(PREFIX + "queue_messages", "Queue messages waiting or in flight", value=live)
    yield GaugeMetricFamily(PREFIX + "queue_dead_letters", "Queue messages dead-lettered, not yet handled",
                            value=dead)


_registry = CollectorRegistry()
_registry.register(ProductCollector())


def exposition() -> bytes:
    return generate_latest(_registry)


def serve(what: str, functions: list[str], start_response: Any) -> list[bytes]:
    """WSGI reply for `/metrics` or `/healthz` (the union of every function's checks, each run once)."""
    from common.http import health

    if what == "metrics":
        body, status, kind = exposition(), "200 OK", TEXT
    else:
        needs = [need for name in functions for need in health.needs_of(name)]
        report, code = health.check(needs)
        body, kind = json.dumps({**report, "functions": functions}).encode(), "application/json"
        status = "200 OK" if code == 200 else "503 Service Unavailable"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]
