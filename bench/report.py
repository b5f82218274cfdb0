"""Printing figures side by side, and the percentiles they are quoted at."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def table(title: str, rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n## {title}")
    for n, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q < 1) of `values`, as statistics.quantiles interpolates it."""
    if len(values) < 2:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))]
