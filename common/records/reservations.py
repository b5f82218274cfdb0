"""Reservations: tokens taken before a request's work, settled after it, expired if it never ends.

Like the idempotency keys of payment APIs, a keyed reservation keeps a record
per account and key: the fingerprint of the request, the state of its attempt
and, once it succeeded, its reply.

- The same key with the same request replays the reply (charged nothing); with
  a different request it is 422 `idempotency_key_reused`; while the first
  attempt is still running it is 409 `request_in_progress`.
- Settling refunds the unused tokens and records the reply in one commit, so a
  crash leaves a key either replayable and paid once, or open with its tokens
  still reserved: never paid for with nothing to replay.
- An attempt that failed, or whose lease ran out, leaves nothing to replay: a
  retry runs again, with a new reservation. Whatever closes a reservation
  (its settle, the expiry sweep, the release of a dead holder's reservations,
  a retry taking over an expired key) refunds it under one refund id, so the
  first wins and the others change nothing; a settle that comes after its
  reservation was closed is refused (the work is not given away).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from common.core import errors
from common.records.accounts import read_account
from common.records.lease_slots import spend as lease_spend
from common.records.ledger import SPENDS, apply_refund, charge, refund_spend
from common.records.port import Doc, DocumentStore, Tx

KEYS = "idempotency"
KEY_RETENTION = 24 * 3600  # how long a finished key replays its reply
Reply = Callable[[int], dict[str, Any]]  # the balance after settling -> the reply to keep for the key
Slot = tuple[str, int, int, str]  # a lease's slot to reserve in (`leases.py`): lease id, lane, slot, nonce


def settle_id(spend_id: str) -> str:
    return f"{spend_id}:settle"


def expired_reservation() -> errors.AppError:
    return errors.Unavailable("This request took longer than its reservation allows, so it was not charged and its "
                              "result was dropped. Retry it.", code="reservation_expired")


def _close(tx: Tx, spend_id: str, spend: Doc, refund: int, **marks: Any) -> int:
    """Refund `refund` tokens of an open reservation (once) and close it; the balance (0 for a lease's spend: its
    refund goes back into the lease, the account is not read)."""
    if "lease" in spend:
        refund_spend(tx, spend["username"], spend_id, refund, settle_id(spend_id))
        balance = 0
    else:
        balance = apply_refund(tx, spend["username"], spend_id, refund, settle_id(spend_id))
    closed = tx.get(SPENDS, spend_id) or spend
    for field in ("expires", "holder"):
        closed.pop(field, None)
    tx.put(SPENDS, spend_id, {**closed, **marks})
    return balance


def expire_spend(tx: Tx, spend_id: str) -> bool:
    """Refund all of a reservation nobody will settle and let its key run again; False when it was closed."""
    spend = tx.get(SPENDS, spend_id)
    if spend is None or "expires" not in spend:
        return False
    _close(tx, spend_id, spend, spend["amount"] - spend["refunded"], expired=True)
    record = tx.get(KEYS, spend["key"]) if spend.get("key") else None
    if record is not None and record["spend_id"] == spend_id and record["state"] == "running":
        tx.put(KEYS, spend["key"], {**record, "state": "failed"})
    return True


class Reservations:
    docs: DocumentStore

    def reserve(self, username: str, amount: int, lease: float, key: str | None = None,
                fingerprint: str = "", holder: str = "",
                slot: Slot | None = None, key_id: str = "") -> tuple[str, int, dict[str, Any] | None]:
        """(spend id, balance, reply to replay or None) for a new attempt, or the replay of a finished one.
        `holder` names the process serving it, when something can tell that process died (`release`). With a
        `slot`, the tokens come from that lease, and the account is neither read nor written (balance 0)."""
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
                                      code="request_in_progress", retry_after=1)
            if record is not None and record["state"] == "running":
                expire_spend(tx, record["spend_id"])  # its lease ran out: that attempt can no longer be paid for
            extra = {"expires": now + lease, "kind": "classify", "key_id": key_id,
                     **({"key": record_key} if key is not None else {}), **({"holder": holder} if holder else {})}
            taken, balance = spend_id, 0
            if slot is None:
                balance = charge(tx, username, amount, spend_id, **extra)
            else:
                taken = lease_spend(tx, username, slot, amount, **extra)
            if key is not None:
                tx.put(KEYS, record_key, {"fingerprint": fingerprint, "spend_id": taken, "state": "running",
                                          "expires": now + lease, "response": None, "username": username})
            return taken, balance, None

        return self.docs.transact(work)

    def settle(self, username: str, spend_id: str, used: int, key: str | None = None,
               reply: Reply | None = None, failed: bool = False, leased_balance: int = 0) -> int:
        """Refund what was not used, close the reservation and record the attempt's outcome (the reply built
        from the balance this commit leaves), all in one commit; the balance. A reservation closed already
        (expired, released) cannot be settled any more: 503 `reservation_expired`, unless the attempt failed."""

        def work(tx: Tx) -> int:
            spend = tx.get(SPENDS, spend_id)
            if spend is None or spend["username"] != username:
                raise errors.NotFound("unknown reservation")
            if spend.get("expired"):
                if failed:
                    return int(read_account(tx, username)["tokens"])
                raise expired_reservation()
            balance = _close(tx, spend_id, spend, spend["amount"] - used)
            balance = leased_balance if "lease" in spend else balance  # the lease's holder knows it, not the account
            record = tx.get(KEYS, f"{username}:{key}") if key is not None else None
            if record is not None and record["spend_id"] == spend_id:
                tx.put(KEYS, f"{username}:{key}", {
                    **record, "state": "failed" if failed else "done", "expires": time.time() + KEY_RETENTION,
                    "response": None if failed or reply is None else reply(balance)})
            return balance

        return self.docs.transact(work)

    def expire_reservations(self, now: float | None = None, limit: int = 500) -> int:
        """Refund every reservation whose lease ran out unsettled; how many were refunded. Safe to run anywhere,
        any number of times, beside live requests."""
        return self._expire_each(self.docs.find_below(SPENDS, "expires", now or time.time(), limit))

    def release_holder(self, holder: str, limit: int = 500) -> int:
        """Refund every open reservation of a holder known to be dead (the local stack's previous run, at its next
        start), without waiting for their lease; how many were refunded."""
        released = 0
        while found := self.docs.find(SPENDS, "holder", holder, limit):  # closing one drops its holder
            now_released = self._expire_each(found)
            released += now_released
            if not now_released:  # an index that lags its commits may still list closed ones: nothing left to do
                break
        return released

    def _expire_each(self, found: list[tuple[str, Doc]]) -> int:
        def one(spend_id: str) -> bool:
            return self.docs.transact(lambda tx: expire_spend(tx, spend_id))

        return sum(one(spend_id) for spend_id, _ in found)
