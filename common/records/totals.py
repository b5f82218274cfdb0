"""The day's totals and the account count, kept as sharded counters in the commits that change them.

`TOTAL_SHARDS` counter documents per day, added to in the commit of each spend and refund charged on an account's
document (one of them, chosen by the spend's id, so no one document takes every spend), in the commit that closes
a token lease for all of its spends at once (a busy account's requests add nothing each), and likewise for the
account count at sign-up and deletion: reading them is `TOTAL_SHARDS` reads, never a scan of the records.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from common.records.port import DocumentStore, Tx

TOTALS = "totals"
TOTAL_SHARDS = 64
ACCOUNTS_TOTAL = "accounts"


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _shard(name: str, anchor: str) -> str:
    return f"{name}#{zlib.crc32(anchor.encode()) % TOTAL_SHARDS}"


def add_totals(tx: Tx, anchor: str, **amounts: int) -> None:
    """Add `amounts` (spent, refunded, training_spent, training_refunded) to today's totals, in the caller's
    commit; `anchor` (a spend id) picks the shard."""
    key = _shard(day_of(time.time()), anchor)
    doc = tx.get(TOTALS, key) or {}
    tx.put(TOTALS, key, {**doc, **{name: int(doc.get(name, 0)) + n for name, n in amounts.items()}})


def count_account(tx: Tx, username: str, delta: int = 1) -> None:
    """An account created (1) or deleted (-1), in that commit."""
    key = _shard(ACCOUNTS_TOTAL, username)
    doc = tx.get(TOTALS, key) or {}
    tx.put(TOTALS, key, {"accounts": int(doc.get("accounts", 0)) + delta})


def _sum(docs: list[dict[str, Any] | None]) -> dict[str, int]:
    total: dict[str, int] = {}
    for doc in docs:
        for name, value in (doc or {}).items():
            total[name] = total.get(name, 0) + int(value)
    return total


def read_totals(docs: DocumentStore, day: str) -> dict[str, int]:
    """Accounts, tokens spent on `day` net of refunds, and images classified that day (tokens spent on
    classification and sort jobs, one per image, net of refunds; training excluded)."""
    shards = range(TOTAL_SHARDS)
    today = _sum([docs.get(TOTALS, f"{day}#{n}") for n in shards])
    accounts = _sum([docs.get(TOTALS, f"{ACCOUNTS_TOTAL}#{n}") for n in shards]).get("accounts", 0)
    net = today.get("spent", 0) - today.get("refunded", 0)
    training = today.get("training_spent", 0) - today.get("training_refunded", 0)
    return {"accounts": accounts, "tokens_spent": net, "images_classified": net - training}
