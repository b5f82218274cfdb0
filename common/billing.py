"""Charging for work: reserve tokens first, refund what was not used, replay a repeated request.

The reusable piece behind every metered endpoint. `reserve` takes the tokens
atomically before any work is done (so concurrent requests can never spend the
same token), and `Reservation.settle` refunds the part that was not used and
records the reply. With an `Idempotency-Key`, the spend record is keyed by the
account and that key: a retry finds the record and gets the first reply back
without being charged again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from common import errors
from common.store import Account, get_store

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass
class Reservation:
    username: str
    amount: int
    spend_id: str
    balance: int
    keyed: bool
    replay: dict[str, Any] | None = None

    def settle(self, used: int) -> int:
        """Refund the tokens that were not used (at most once per reservation); the new balance."""
        if used >= self.amount:
            return self.balance
        return get_store().refund(self.username, self.spend_id, self.amount - used, f"{self.spend_id}:settle")

    def remember(self, status: int, body: dict[str, Any]) -> None:
        """Keep the reply, so that a retry with the same Idempotency-Key gets it back unchanged."""
        if self.keyed:
            get_store().save_response(self.spend_id, {"status": status, "body": body})


def reserve(account: Account, amount: int, idempotency_key: str | None) -> Reservation:
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise errors.BadRequest("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces.",
                                code="invalid_idempotency_key")
    spend_id = f"{account.username}:key:{idempotency_key}" if idempotency_key else f"{account.username}:{uuid.uuid4()}"
    spend = get_store().spend(account.username, amount, spend_id)
    reservation = Reservation(account.username, amount, spend_id, spend.balance, idempotency_key is not None)
    if spend.replayed:
        if spend.response is None:
            raise errors.Conflict("A request with this Idempotency-Key is still being processed. Retry shortly.",
                                  code="request_in_progress", headers={"Retry-After": "1"})
        reservation.replay = spend.response
    return reservation
