"""Reservations: tokens taken before a request's work, settled after it, expired if it never ends.

Like the idempotency keys of payment APIs, a keyed reservation keeps a record
per account and key: the fingerprint of the request, the state of its attempt
and, once it succeeded, its reply.

- The same key with the same request replays the reply (charged nothing); with
  a different request it is 422 `idempotency_key_reused`; while the first
  attempt is still running it is 409 `request_in_progress`.
- An attempt that failed, or whose lease ran out, leaves nothing to replay: a
  retry runs again, with a new reservation.
- Settling refunds the unused tokens under one refund id per reservation, and
  the expiry sweep refunds an unsettled reservation under that same id, so
  whichever comes first wins and the other changes nothing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from common import errors
from common.store.accounts import read_account
from common.store.ledger import SPENDS, apply_refund, charge
from common.store.port import DocumentStore, Tx

KEYS = "idempotency"


def settle_id(spend_id: str) -> str:
    return f"{spend_id}:settle"


class Reservations:
    docs: DocumentStore

    def reserve(self, username: str, amount: int, lease: float, key: str | None = None,
                fingerprint: str = "") -> tuple[str, int, dict[str, Any] | None]:
        """(spend id, balance, reply to replay or None) for a new attempt, or the replay of a finished one."""
        now, spend_id = time.time(), f"{username}:{uuid.uuid4().hex}"
        record_key = f"{username}:{key}"

        def work(tx: Tx) -> tuple[str, int, dict[str, Any] | None]:
            record = tx.get(KEYS, record_key) if key is not None else None
            if record is not None and record["state"] != "failed" and record["expires"] > now:
                if record["fingerprint"] != fingerprint:
                    raise errors.UnprocessableRequest(
                        "This Idempotency-Key was used for a different request. Use a new key for a new request.",
                        code="idempotency_key_reused")
                if record["state"] == "done":
                    return record["spend_id"], int(read_account(tx, username)["tokens"]), record["response"]
                raise errors.Conflict("A request with this Idempotency-Key is still being processed. Retry shortly.",
                                      code="request_in_progress", headers={"Retry-After": "1"})
            balance = charge(tx, username, amount, spend_id, expires=now + lease)
            if key is not None:
                tx.put(KEYS, record_key, {"fingerprint": fingerprint, "spend_id": spend_id, "state": "running",
                                          "expires": now + lease, "response": None, "username": username})
            return spend_id, balance, None

        return self.docs.transact(work)

    def settle(self, username: str, spend_id: str, used: int, key: str | None = None,
               response: dict[str, Any] | None = None, failed: bool = False) -> int:
        """Refund what was not used (once), close the reservation and record the attempt's outcome."""

        def work(tx: Tx) -> int:
            spend = tx.get(SPENDS, spend_id)
            if spend is None:
                raise errors.NotFound("unknown reservation")
            balance = apply_refund(tx, username, spend_id, spend["amount"] - used, settle_id(spend_id))
            closed = tx.get(SPENDS, spend_id) or spend
            closed.pop("expires", None)
            tx.put(SPENDS, spend_id, closed)
            if key is not None:
                record = tx.get(KEYS, f"{username}:{key}")
                if record is not None and record["spend_id"] == spend_id:
                    tx.put(KEYS, f"{username}:{key}", {**record, "state": "failed" if failed else "done",
                                                       "response": None if failed else response,
                                                       "expires": time.time() + KEY_RETENTION})
            return balance

        return self.docs.transact(work)

    def expire_reservations(self, now: float | None = None, limit: int = 500) -> int:
        """Refund every reservation whose lease ran out unsettled; how many were refunded. Safe to run anywhere,
        any number of times, beside live requests: the refund id is the one `settle` would use."""
        expired = 0
        for spend_id, spend in self.docs.find_below(SPENDS, "expires", now or time.time(), limit):
            def work(tx: Tx, spend_id: str = spend_id, username: str = spend["username"]) -> bool:
                current = tx.get(SPENDS, spend_id)
                if current is None or "expires" not in current:
                    return False  # settled meanwhile
                apply_refund(tx, username, spend_id, current["amount"] - current["refunded"], settle_id(spend_id))
                current = tx.get(SPENDS, spend_id) or current
                current.pop("expires", None)
                tx.put(SPENDS, spend_id, {**current, "expired": True})
                return True

            expired += self.docs.transact(work)
        return expired


KEY_RETENTION = 24 * 3600  # how long a finished key replays its reply
