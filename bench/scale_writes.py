"""What the recorded writes say, as Firestore would see them: contention, and the hottest document.

Firestore's guidance is about one sustained write per second to any one
document; so for each document we take the most writes it had in any
1-second window (sliding, not calendar seconds), and the busiest document's
writes per second averaged over the run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from common.adapters.store.recorder import Record


def most_in_window(times: list[float], window: float = 1.0) -> int:
    """The most of `times` (sorted) falling in any half-open interval of length `window`."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def label(doc: tuple[str, str]) -> str:
    """A document's kind and a short form of its key, for a table."""
    kind, key = doc
    return f"{kind}/{key if len(key) <= 24 else key[:21] + '...'}"


def summarize(records: Iterable[Record], seconds: float) -> dict[str, Any]:
    """Transactions, attempts, writes per kind, and the hottest documents over a run of `seconds`."""
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    attempts = commits = aborted = 0
    for record in records:
        attempts += record.attempts
        commits += record.committed
        aborted += not record.committed
        for doc in record.writes:
            times[doc].append(record.t)
            kinds[doc[0]] += 1
    windows = {doc: most_in_window(sorted(ts)) for doc, ts in times.items()}
    hot_window = max(windows, key=lambda d: windows[d], default=None)
    busiest = max(times, key=lambda d: len(times[d]), default=None)
    by_kind = {kind: {"writes": n, "documents": sum(doc[0] == kind for doc in times),
                      "max_writes_1s": max(w for doc, w in windows.items() if doc[0] == kind),
                      "busiest_document_writes_per_s":
                          max(len(ts) for doc, ts in times.items() if doc[0] == kind) / seconds if seconds > 0 else 0.0}
               for kind, n in kinds.most_common()}
    return {
        "transactions": commits + aborted, "commits": commits, "aborted": aborted, "attempts": attempts,
        "attempts_per_commit": attempts / commits if commits else 0.0,
        "writes": sum(kinds.values()), "by_kind": by_kind, "documents": len(times),
        "max_writes_1s": windows[hot_window] if hot_window else 0,
        "max_writes_1s_document": label(hot_window) if hot_window else "",
        "busiest_document": label(busiest) if busiest else "",
        "busiest_document_writes": len(times[busiest]) if busiest else 0,
        "busiest_document_writes_per_s": len(times[busiest]) / seconds if busiest and seconds > 0 else 0.0,
    }
