"""Abuse limits kept in the store, so every instance sees them: failed passwords and sign-ups.

- Failed password attempts are counted per account name (existing or not, so
  the answer tells nothing). From the LOGIN_FREE_FAILURES-th failure in a row,
  further attempts are refused with 429 for a time that doubles each failure
  (1 s, 2 s, 4 s ... at most 15 minutes); a success clears the count. API keys
  are never throttled by this.
- Sign-ups are counted per client address and in all, per minute.
"""

from __future__ import annotations

import math
import time

from common import errors
from common.store.port import DocumentStore, Tx

FAILURES, WINDOWS = "login_failures", "rate_windows"
MAX_LOCK = 900.0


def too_many(message: str, until: float, now: float, code: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(message, retry_after=max(1, math.ceil(until - now)), code=code)


class Throttles:
    docs: DocumentStore

    def check_login(self, username: str, now: float | None = None) -> None:
        """Refuse (429) a password attempt while the account is locked; one read."""
        now = now or time.time()
        record = self.docs.get(FAILURES, username)
        if record is not None and record["until"] > now:
            raise too_many(f"Too many wrong passwords for {username!r}. Wait before trying again, or use your "
                           "API key.", record["until"], now, "too_many_attempts")

    def login_failed(self, username: str, free_failures: int, now: float | None = None) -> None:
        now = now or time.time()

        def work(tx: Tx) -> None:
            record = tx.get(FAILURES, username) or {"failures": 0, "until": 0.0}
            failures = record["failures"] + 1
            locked = min(MAX_LOCK, 2.0 ** (failures - free_failures)) if failures >= free_failures else 0.0
            tx.put(FAILURES, username, {"failures": failures, "until": now + locked, "updated": now})

        self.docs.transact(work)

    def login_succeeded(self, username: str) -> None:
        if self.docs.get(FAILURES, username) is None:
            return  # the usual case costs one read, no write

        def work(tx: Tx) -> None:
            if tx.get(FAILURES, username) is not None:
                tx.delete(FAILURES, username)

        self.docs.transact(work)

    def count_in_window(self, name: str, limit: int, window: float = 60.0, now: float | None = None) -> None:
        """Count one event against `name` in the current window; over `limit` is a 429 and counts nothing."""
        now = now or time.time()
        start = math.floor(now / window) * window
        key = f"{name}@{int(start)}"

        def work(tx: Tx) -> None:
            record = tx.get(WINDOWS, key) or {"count": 0, "expires": start + window}
            if record["count"] >= limit:
                raise too_many("Too many sign-ups in a short time. Try again in a minute.", start + window, now,
                               "rate_limited")
            tx.put(WINDOWS, key, {**record, "count": record["count"] + 1})

        self.docs.transact(work)
