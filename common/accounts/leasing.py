"""The token leases this instance holds: a busy account's requests spend from a block taken in one write.

The rules (a lease's block, its spend records, its exact close) live in
`common/records/leases.py`; this is the in-memory side: which lease an
account spends from, which lane and slot a reservation takes, how many tokens
may still be handed out, and when a lease is closed (idle, short of tokens, or
its spending window over; by a background thread, never on a request's path).
In memory a lease never hands out more than its records allow: a commit whose
outcome is unknown counts as spent until the close, which sums the records.
An account that is not busy in this instance, or holds less than
`lease_min_balance`, is charged on its own document as before.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from common.core import errors
from common.core.config import BillingSettings
from common.records.lease_slots import SlotTaken
from common.records.reservations import Slot
from common.records.store import Store

RATE_WINDOW = 2.0  # seconds over which an account's rate in this instance is measured
IDLE = 2.0  # seconds without a reservation before a lease is given back
TICK = 0.5  # how often the closer looks
MAX_BLOCK = 100_000
log = logging.getLogger("imageclassify.leases")
Reserved = tuple[str, int, dict[str, Any] | None]  # spend id, balance, reply to replay


@dataclass
class Lease:
    id: str
    block: int
    left: int  # tokens it may still hand out
    spend_until: float  # none handed out after: each reservation expires before the lease does
    slots: list[int]  # the next slot of each lane
    free: set[int]
    open: int = 0  # reservations handed out and not settled
    last: float = 0.0
    retry_at: float = 0.0  # a close that found a reservation still open tries again after this
    closing: bool = False  # a closer is at work on it


@dataclass
class Handout:
    username: str
    lease: Lease
    lane: int
    amount: int
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def slot(self) -> Slot:
        return self.lease.id, self.lane, self.lease.slots[self.lane], self.nonce


class _Account:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.lease: Lease | None = None
        self.retired: list[Lease] = []
        self.times: deque[float] = deque()
        self.next_take = 0.0
        self.short = 0  # the block of the last lease that ran short before its window ended (0: none did)


class LeaseBook:
    def __init__(self, store: Store, s: BillingSettings) -> None:
        self.store, self.s = store, s
        self.accounts: dict[str, _Account] = {}
        self.lock = threading.Lock()
        self.closer: threading.Thread | None = None

    def _account(self, username: str) -> _Account:
        with self.lock:
            return self.accounts.setdefault(username, _Account())

    def reserve(self, username: str, amount: int, key: str | None, fp: str,
                key_id: str = "") -> tuple[Reserved, Handout | None]:
        """Reserve from a lease when the account is busy here, else on the account's document; `key_id`: the API
        key the request came with, recorded on its spend for the usage history."""
        def direct() -> Reserved:
            return self.store.reserve(username, amount, self.s.reservation_lease, key, fp, self.s.reservation_holder,
                                      key_id=key_id)

        while (handout := self._hand_out(username, amount)) is not None:
            try:
                reserved = self.store.reserve(username, amount, self.s.reservation_lease, key, fp,
                                              self.s.reservation_holder, handout.slot, key_id=key_id)
            except SlotTaken:  # an earlier commit of unknown outcome holds it: the next slot
                self._release_lane(handout, advance=True)
                self.done(handout, back=handout.amount)
                continue
            except errors.AppError as exc:
                self._release_lane(handout, advance=False)
                self.done(handout, back=0)  # counted spent until the close sums the records
                if exc.code != "lease_closed":
                    raise
                self._retire(username, handout.lease)
                continue
            except BaseException:
                self._release_lane(handout, advance=False)
                self.done(handout, back=0)
                raise
            created = reserved[2] is None
            self._release_lane(handout, advance=created)
            if not created:  # a replay: nothing was spent
                self.done(handout, back=handout.amount)
                return reserved, None
            return reserved, handout
        return direct(), None

    def _hand_out(self, username: str, amount: int) -> Handout | None:
        if self.s.lease_seconds <= 0:
            return None
        acc, now = self._account(username), time.time()
        with acc.cond:
            acc.times.append(now)
            while acc.times and acc.times[0] < now - RATE_WINDOW:
                acc.times.popleft()
            while True:
                lease = acc.lease
                if lease is not None and (lease.left < amount or time.time() >= lease.spend_until):
                    acc.short = lease.block if time.time() < lease.spend_until else 0
                    self._retire_locked(acc, lease)
                    lease = None
                if lease is None:
                    lease = self._take(acc, username, amount, len(acc.times) / RATE_WINDOW)
                    if lease is None:
                        return None
                if lease.free:
                    lane = min(lease.free)
                    lease.free.discard(lane)
                    lease.left -= amount
                    lease.open += 1
                    lease.last = time.time()
                    return Handout(username, lease, lane, amount)
                acc.cond.wait(timeout=1.0)

    def _take(self, acc: _Account, username: str, amount: int, rate: float) -> Lease | None:
        """A new lease sized to this instance's rate (under the account's lock: one take at a time)."""
        now = time.time()
        if rate < self.s.lease_min_rate or now < acc.next_take:
            return None
        # the rate over a window, with room to grow; twice the last block when that one ran short (a rate
        # measured while it was rising)
        wanted = min(MAX_BLOCK, max(math.ceil(rate * self.s.lease_seconds * 2) + amount, 2 * acc.short))
        expires = now + self.s.lease_seconds + self.s.reservation_lease + 5
        try:
            lease_id, block = self.store.take_lease(username, wanted, amount, self.s.lease_min_balance,
                                                    self.s.lease_floor, expires, self.s.lease_lanes,
                                                    self.s.reservation_holder)
        except errors.AppError:
            block = 0
        if block <= 0:
            acc.next_take = now + 1.0  # the account cannot spare one: its document, for a while
            return None
        acc.lease = Lease(lease_id, block, block, now + self.s.lease_seconds, [0] * self.s.lease_lanes,
                          set(range(self.s.lease_lanes)), last=now)
        self._start_closer()
        return acc.lease

    def _release_lane(self, handout: Handout, advance: bool) -> None:
        acc = self._account(handout.username)
        with acc.cond:
            handout.lease.slots[handout.lane] += advance
            handout.lease.free.add(handout.lane)
            acc.cond.notify_all()

    def done(self, handout: Handout, back: int) -> None:
        """A reservation ended; `back` tokens of it (refunded, or never spent) may be handed out again."""
        acc = self._account(handout.username)
        with acc.cond:
            handout.lease.open -= 1
            handout.lease.left += back
            acc.cond.notify_all()

    def held(self, username: str) -> int:
        """What this instance's leases of the account may still hand out."""
        acc = self._account(username)
        with acc.cond:
            return sum(lease.left for lease in [*acc.retired, *([acc.lease] if acc.lease else [])])

    def _retire(self, username: str, lease: Lease) -> None:
        acc = self._account(username)
        with acc.cond:
            self._retire_locked(acc, lease)

    @staticmethod
    def _retire_locked(acc: _Account, lease: Lease) -> None:
        if acc.lease is lease:
            acc.lease = None
        if lease not in acc.retired:
            acc.retired.append(lease)
        acc.cond.notify_all()

    def _start_closer(self) -> None:
        with self.lock:
            if self.closer is None:
                self.closer = threading.Thread(target=self._close_loop, name="lease-closer", daemon=True)
                self.closer.start()

    def _close_loop(self) -> None:
        while True:
            time.sleep(TICK)
            try:
                self.close_idle()
            except Exception:  # a store hiccup: the next tick tries again; the sweeper is the backstop
                log.exception("closing idle token leases failed; retrying")

    def close_idle(self, everything: bool = False) -> int:
        """Give back the leases that are retired, idle or (with `everything`) any, once none of their
        reservations is open; how many were closed."""
        closed = 0
        for acc in list(self.accounts.values()):
            now = time.time()
            with acc.cond:
                lease = acc.lease
                if lease is not None and (everything or now - lease.last > IDLE or now >= lease.spend_until):
                    self._retire_locked(acc, lease)
                ready = [lease for lease in acc.retired
                         if lease.open == 0 and now >= lease.retry_at and not lease.closing]
                for lease in ready:
                    lease.closing = True
            for lease in ready:
                try:
                    outcome = self.store.close_lease(lease.id)
                finally:
                    with acc.cond:
                        lease.closing = False
                with acc.cond:
                    if outcome is None:  # a commit of unknown outcome left a reservation open: after its expiry
                        lease.retry_at = time.time() + 5.0
                        continue
                    acc.retired.remove(lease)
                    closed += 1
        return closed


_BOOKS: weakref.WeakKeyDictionary[Store, LeaseBook] = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def book(store: Store, s: BillingSettings) -> LeaseBook:
    """This instance's leases over `store` (one book per store)."""
    with _BOOKS_LOCK:
        found = _BOOKS.get(store)
        if found is None:
            found = _BOOKS[store] = LeaseBook(store, s)
        return found


@atexit.register
def _give_back() -> None:
    """A process that exits gives its leases back (one killed leaves them to the sweeper, after their expiry)."""
    deadline = time.monotonic() + 10.0
    for found in list(_BOOKS.values()):
        try:
            while found.close_idle(everything=True) or any(acc.retired for acc in found.accounts.values()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        except Exception:  # the store is gone already: the sweeper closes them after their expiry
            log.exception("token leases left to the sweeper")
