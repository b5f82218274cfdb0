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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.accounts import leasing
from common.core import errors
from common.core.config import Settings
from common.records.accounts import ACCOUNTS
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
    leases: leasing.LeaseBook | None = None
    handout: leasing.Handout | None = None  # the lease it was reserved from (None: the account's document)

    def settle(self, used: int, status: int, body: dict[str, Any]) -> dict[str, Any]:
        """Refund the tokens that were not used and keep the reply for a retry with the same Idempotency-Key, in
        one commit (a crash in between would leave the key paid for with nothing to replay); the reply's body
        with the balance that commit left (from a lease: the account's tokens and what this instance's leases
        still hold; other instances' leases are not counted while they are open)."""

        def reply(balance: int) -> dict[str, Any]:
            return {"status": status, "body": {**body, "tokens_remaining": balance}}

        self.balance = self._settle(used, lambda leased: self.store.settle(
            self.username, self.spend_id, used, self.key, reply, leased_balance=leased))
        return dict(reply(self.balance)["body"])

    def abandon(self, used: int) -> None:
        """The request failed on our side: refund what was not used and let a retry run again."""
        self._settle(used, lambda _: self.store.settle(self.username, self.spend_id, used, self.key, failed=True))

    def _settle(self, used: int, commit: Callable[[int], int]) -> int:
        """Run the settling commit; a lease gets the refund back to hand out once it committed."""
        if self.leases is None or self.handout is None:
            return commit(0)
        leased = self.leases.held(self.username) + self.amount - used
        account = self.store.docs.get(ACCOUNTS, self.username)
        back = 0
        try:
            balance = commit(leased + int(account["tokens"] if account else 0))
            back = self.amount - used
            return balance
        finally:
            self.leases.done(self.handout, back)


def reserve(store: Store, s: Settings, account: Account, amount: int, idempotency_key: str | None,
            request_fingerprint: str = "") -> Reservation:
    """Reserve `amount` tokens of `account` in `store` for one request (or find the reply kept for its key)."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise errors.BadRequest("Idempotency-Key must be 1 to 200 printable ASCII characters without spaces.",
                                code="invalid_idempotency_key")
    leases = leasing.book(store, s.billing)
    (spend_id, balance, replay), handout = leases.reserve(account.username, amount, idempotency_key,
                                                          request_fingerprint,
                                                          account.key_id)
    return Reservation(store, account.username, amount, spend_id, balance, idempotency_key, replay, leases, handout)
