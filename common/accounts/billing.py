"""Charging for work: reserve tokens first, refund what was not used, replay a repeated request.

The reusable piece behind every metered endpoint. `reserve` takes the tokens
atomically before any work is done (so concurrent requests can never spend the
same token), and `Reservation.settle` refunds the part that was not used and
records the reply, in one commit. With an `Idempotency-Key`, a retry of the same request gets
the first reply back without being charged again; the rules live in
`common/records/reservations.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from common.core import errors
from common.core.config import Settings
from common.records.records import Account
from common.records.store import Store

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def fingerprint(*parts: Any) -> str:
    """A stable digest of what a request asks for (its parsed content, not its encoding)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Reservation:
    store: Store
    username: str
    amount: int
    spend_id: str
    balance: int
    key: str | None
    replay: dict[str, Any] | None = None

    def settle(self, used: int, status: int, body: dict[str, Any]) -> dict[str, Any]:
        """Refund the tokens that were not used and keep the reply for a retry with the same Idempotency-Key, in
        one commit (a crash in between would leave the key paid for with nothing to replay); the reply's body
        with the balance that commit left."""

        def reply(balance: int) -> dict[str, Any]:
            return {"status": status, "body": {**body, "tokens_remaining": balance}}

        self.balance = self.store.settle(self.username, self.spend_id, used, self.key, reply)
        return dict(reply(self.balance)["body"])

    def abandon(self, used: int) -> None:
        """The request failed on our side: refund what was not used and let a retry run again."""
        self.store.settle(self.username, self.spend_id, used, self.key, failed=True)


def reserve(store: Store, s: Settings, account: Account, amount: int, idempotency_key: str | None,
            request_fingerprint: str = "") -> Reservation:
    """Reserve `amount` tokens of `account` in `store` for one request (or find the reply kept for its key)."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise errors.BadRequest("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces.",
                                code="invalid_idempotency_key")
    spend_id, balance, replay = store.reserve(account.username, amount, s.billing.reservation_lease, idempotency_key,
                                              request_fingerprint, s.billing.reservation_holder, account.key_id)
    return Reservation(store, account.username, amount, spend_id, balance, idempotency_key, replay)
