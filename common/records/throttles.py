"""Abuse limits kept in the store, so every instance sees them: failed passwords and sign-ups.

- Failed password attempts are counted per (account name, client network), for
  names that exist or not alike, so the answer tells nothing. From the
  LOGIN_FREE_FAILURES-th failure in a row, that network's attempts on that
  name are refused with 429 for a time that doubles each failure (1 s, 2 s, 4 s
  ... at most 15 minutes); a success from it clears its count. A guesser
  elsewhere never locks the owner out. A record is forgotten a day after its
  lock ends (read as absent, then deleted by the sweeper), so the records a flood
  of random names leaves do not pile up. API keys are never throttled by this.
- Sign-ups are limited per client network per minute, and the global backstop
  counts each network once per minute (its first sign-up), so exhausting it takes
  as many networks as the limit, not a dozen.
"""

from __future__ import annotations

import math
import time
from typing import Any

from common.core import errors
from common.records.port import DocumentStore, Tx

FAILURES, WINDOWS = "login_failures", "rate_windows"
MAX_LOCK = 900.0
MEMORY = 86400.0  # seconds a failure is remembered after the lock it caused ends


def too_many(message: str, until: float, now: float, code: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(message, retry_after=max(1, math.ceil(until - now)), code=code)


def failure_key(username: str, network: str) -> str:
    return f"{username}@{network}"


def live(doc: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """A record still in force: one past its `expires` is absent whether or not the sweeper deleted it yet."""
    return doc if doc is not None and doc.get("expires", math.inf) > now else None


class Throttles:
    docs: DocumentStore

    def check_login(self, username: str, network: str, now: float | None = None) -> None:
        """Refuse (429) a password attempt from `network` while that network is locked out of the name; one read."""
        now = now or time.time()
        record = live(self.docs.get(FAILURES, failure_key(username, network)), now)
        if record is not None and record["until"] > now:
            raise too_many(f"Too many wrong passwords for {username!r} from your address. Wait before trying "
                           "again, or use your API key.", record["until"], now, "too_many_attempts")

    def login_failed(self, username: str, network: str, free_failures: int, now: float | None = None) -> None:
        now = now or time.time()
        key = failure_key(username, network)

        def work(tx: Tx) -> None:
            record = live(tx.get(FAILURES, key), now) or {"failures": 0}
            failures = record["failures"] + 1
            locked = min(MAX_LOCK, 2.0 ** (failures - free_failures)) if failures >= free_failures else 0.0
            tx.put(FAILURES, key, {"failures": failures, "until": now + locked, "updated": now,
                                   "expires": now + locked + MEMORY})

        self.docs.transact(work)

    def login_succeeded(self, username: str, network: str) -> None:
        key = failure_key(username, network)
        if self.docs.get(FAILURES, key) is None:
            return  # the usual case costs one read, no write

        def work(tx: Tx) -> None:
            if tx.get(FAILURES, key) is not None:
                tx.delete(FAILURES, key)

        self.docs.transact(work)

    def admit_signup(self, network: str, per_network: int, networks_per_minute: int, window: float = 60.0,
                     now: float | None = None) -> None:
        """Count one sign-up from `network` in the current window, and the network itself against the global
        backstop on its first; over either limit is a 429 and counts nothing."""
        now = now or time.time()
        start = math.floor(now / window) * window
        mine, everyone = f"signup:{network}@{int(start)}", f"signup:*@{int(start)}"
        refused = too_many("Too many sign-ups in a short time. Try again in a minute.", start + window, now,
                           "rate_limited")

        def work(tx: Tx) -> None:
            record = tx.get(WINDOWS, mine) or {"count": 0, "expires": start + window}
            if record["count"] >= per_network:
                raise refused
            if record["count"] == 0:
                total = tx.get(WINDOWS, everyone) or {"count": 0, "expires": start + window}
                if total["count"] >= networks_per_minute:
                    raise refused
                tx.put(WINDOWS, everyone, {**total, "count": total["count"] + 1})
            tx.put(WINDOWS, mine, {**record, "count": record["count"] + 1})

        self.docs.transact(work)
