"""The slots a lease's spends fill, one chain per lane (the rules are in `leases.py`).

Slot n of a lane is created only when slot n-1 holds a spend, never a seal: a
lane's spends are a prefix that a seal in its first empty slot ends for good.
"""

from __future__ import annotations

import time
from typing import Any

from common.core import errors
from common.records.ledger import SPENDS, usage_day
from common.records.metered import tally
from common.records.port import Tx

LEASES = "leases"


def slot_id(lease_id: str, lane: int, n: int) -> str:
    return f"{lease_id}:{lane}:{n}"


def lease_closed() -> errors.AppError:
    return errors.Unavailable("This instance's token lease was closed meanwhile. Retry.", code="lease_closed")


class SlotTaken(Exception):
    """The slot was filled by another attempt (an earlier commit whose outcome was unknown): take the next one."""


def spend(tx: Tx, username: str, slot: tuple[str, int, int, str], amount: int, **extra: Any) -> str:
    """Record a reservation of `amount` tokens of a lease in a slot (lease id, lane, n, this attempt's nonce); the
    spend id. Refused when the lane is sealed (the lease closed); `SlotTaken` when another attempt holds the
    slot."""
    lease_id, lane, n, nonce = slot
    spend_id = slot_id(lease_id, lane, n)
    before = tx.get(SPENDS, slot_id(lease_id, lane, n - 1)) if n else {"amount": 0}
    if before is None or before.get("sealed"):
        raise lease_closed()
    found = tx.get(SPENDS, spend_id)
    if found is not None:
        if found.get("nonce") == nonce:  # this attempt committed already (its reply was lost)
            return spend_id
        if found.get("sealed"):
            raise lease_closed()
        raise SlotTaken(spend_id)
    now = time.time()  # its day and key for the usage history; the day's totals are added when its lease closes
    tx.put(SPENDS, spend_id, {"username": username, "amount": amount, "refunded": 0, "created": now,
                              "usage_day": usage_day(username, now), "lease": lease_id, "nonce": nonce, **extra})
    tally(tx, spent=amount)
    return spend_id
