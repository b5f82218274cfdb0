"""Contract suite of token leases (`common/records/leases.py`), on SQLite, the Firestore emulator and DynamoDB (moto):
take, spend, refund and close are exact; concurrent closes close once; a close racing spends counts each spend
that won its slot and refuses the others; a dead holder's lease is closed by the sweeper's call exactly."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from common.accounts import billing, leasing
from common.core import errors
from common.core.config import settings
from common.records.lease_slots import SlotTaken
from common.records.leases import LEASES
from common.records.records import Account
from common.records.store import Store

LEASE = 60.0  # a reservation's lease (seconds)


def new_account(store: Store, tokens: int, name: str = "ann") -> None:
    store.create_account(name, "hash", f"key-{name}", tokens)


def take(store: Store, wanted: int, lanes: int = 4, name: str = "ann") -> str:
    lease_id, block = store.take_lease(name, wanted, 1, 100, 10, time.time() + LEASE + 30, lanes)
    assert block == wanted
    return lease_id


def tokens(store: Store, name: str = "ann") -> int:
    return store.get_account(name).tokens  # type: ignore[union-attr]


def test_take_spend_refund_close_exact(store: Store) -> None:
    new_account(store, 1000)
    lease_id = take(store, 100)
    assert tokens(store) == 900 and store.balance("ann") == 1000
    spends = [store.reserve("ann", 3, LEASE, slot=(lease_id, lane, 0, f"n{lane}"))[0] for lane in range(3)]
    second = store.reserve("ann", 2, LEASE, slot=(lease_id, 0, 1, "n9"))[0]
    assert store.balance("ann") == 1000 - 11 and tokens(store) == 900  # in flight: counted spent
    store.settle("ann", spends[0], used=1)  # 2 back, into the lease
    store.settle("ann", spends[1], used=3)
    store.settle("ann", spends[2], used=0)  # all 3 back
    store.settle("ann", second, used=2)
    assert tokens(store) == 900  # no account write per spend or refund
    assert store.balance("ann") == 1000 - 6
    assert store.close_lease(lease_id) is True
    assert tokens(store) == 994 == store.balance("ann")
    assert store.close_lease(lease_id) is False and tokens(store) == 994  # once
    with pytest.raises(errors.Unavailable):  # sealed: nothing more is spent from it
        store.reserve("ann", 1, LEASE, slot=(lease_id, 0, 2, "late"))
    assert not (store.docs.get("accounts", "ann") or {}).get("leases")  # the account lists no open lease


def test_small_balances_take_no_lease(store: Store) -> None:
    new_account(store, 5)  # the sign-up grant
    assert store.take_lease("ann", 50, 1, 100, 10, time.time() + 60, 4)[1] == 0
    new_account(store, 150, "bob")  # a lease takes at most half of what is above the floor
    assert store.take_lease("bob", 500, 1, 100, 10, time.time() + 60, 4)[1] == 70
    assert tokens(store, "bob") == 80


def test_a_spend_run_again_after_its_reply_was_lost_is_taken_once(store: Store) -> None:
    new_account(store, 1000)
    lease_id = take(store, 100)
    slot = (lease_id, 0, 0, "attempt-1")
    first = store.reserve("ann", 5, LEASE, slot=slot)[0]
    assert store.reserve("ann", 5, LEASE, slot=slot)[0] == first  # Firestore re-runs a commit whose reply was lost
    assert store.balance("ann") == 995
    with pytest.raises(SlotTaken):  # another attempt in that slot: the holder moves on
        store.reserve("ann", 5, LEASE, slot=(lease_id, 0, 0, "attempt-2"))


def test_concurrent_closes_close_once(store: Store) -> None:
    new_account(store, 1000)
    lease_id = take(store, 200)
    spend_id = store.reserve("ann", 7, LEASE, slot=(lease_id, 1, 0, "n"))[0]
    store.settle("ann", spend_id, used=7)
    outcomes: list[bool | None] = []
    threads = [threading.Thread(target=lambda: outcomes.append(store.close_lease(lease_id))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes, key=str) == [False, False, False, True]
    assert tokens(store) == 993 == store.balance("ann")


def test_a_close_racing_spends_counts_each_spend_once(store: Store) -> None:
    """Spenders fill their lanes while the lease closes: each spend either won its slot (and is counted, its
    refund too) or was refused; the account ends at what they used, to the token."""
    new_account(store, 1000)
    lease_id = take(store, 300, lanes=3)
    used, lock, started = [0], threading.Lock(), threading.Barrier(4)

    def spender(lane: int) -> None:
        started.wait()
        n = 0
        while True:
            try:
                spend_id = store.reserve("ann", 2, LEASE, slot=(lease_id, lane, n, f"{lane}-{n}"))[0]
            except errors.Unavailable:
                return  # sealed
            store.settle("ann", spend_id, used=1)  # one of the two back into the lease
            with lock:
                used[0] += 1
            n += 1

    threads = [threading.Thread(target=spender, args=(lane,)) for lane in range(3)]
    for t in threads:
        t.start()
    started.wait()
    closed = None
    deadline = time.monotonic() + 120
    while closed is None and time.monotonic() < deadline:  # None: a spend was open; try again
        closed = store.close_lease(lease_id)
    for t in threads:
        t.join(timeout=120)
    assert closed is True
    assert tokens(store) == 1000 - used[0] == store.balance("ann"), used
    lease = store.docs.get(LEASES, lease_id)
    assert lease is not None and lease["spent"] == used[0] and lease["returned"] == 300 - used[0]


def test_a_dead_holders_lease_is_closed_by_the_sweeper_exactly(store: Store) -> None:
    new_account(store, 1000)
    lease_id = take(store, 100)
    done = store.reserve("ann", 4, LEASE, slot=(lease_id, 0, 0, "a"))[0]
    store.settle("ann", done, used=3)
    store.reserve("ann", 5, LEASE, slot=(lease_id, 0, 1, "b"))  # its process dies: never settled
    assert store.close_lease(lease_id) is None  # a reservation is open and within its lease: not yet
    assert store.close_expired_leases(now=time.time()) == 0
    assert store.close_expired_leases(now=time.time() + 3600) == 1
    assert tokens(store) == 997 == store.balance("ann")
    assert store.expire_reservations(now=time.time() + 7200) == 0  # refunded once, by the close
    assert store.close_expired_leases(now=time.time() + 7200) == 0


@pytest.mark.parametrize("granted", [40, 300])
def test_concurrent_callers_through_leases_never_oversell(store: Store, granted: int) -> None:
    """N callers of one account, each retrying a 503 as clients do: exactly `granted` requests are paid for."""
    new_account(store, granted)
    s = dataclasses.replace(settings().billing, lease_min_rate=0.0, lease_min_balance=20, lease_floor=2,
                            lease_lanes=4)
    book = leasing.LeaseBook(store, s)
    successes, refused, lock = [0], [0], threading.Lock()

    def caller() -> None:
        while True:
            try:
                (spend_id, _, _), handout = book.reserve("ann", 1, None, "")
            except errors.InsufficientTokens:
                with lock:
                    refused[0] += 1
                return
            except errors.Unavailable:  # tokens held by a lease its closer gives back within a tick: retry
                time.sleep(leasing.TICK / 4)
                continue
            reservation = billing.Reservation(store, "ann", 1, spend_id, 0, None, None, book, handout)
            reservation.settle(1, 200, {})
            with lock:
                successes[0] += 1

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    while book.close_idle(everything=True):
        pass
    assert successes[0] == granted and refused[0] == len(threads)  # each caller spends until refused
    assert tokens(store) == 0 == store.balance("ann")


def test_idempotency_key_replays_from_a_lease_and_charges_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    new_account(store, 1000)
    s = dataclasses.replace(settings().billing, lease_min_rate=0.0)
    book = leasing.LeaseBook(store, s)
    monkeypatch.setattr(leasing, "book", lambda _store, _s: book)
    account, full = Account("ann", "hash", 1000), dataclasses.replace(settings(), billing=s)
    first = billing.reserve(store, full, account, 2, "key-1", "fp")
    assert first.handout is not None  # from a lease
    body = first.settle(1, 200, {"ok": True})
    assert body["tokens_remaining"] == 999  # the account's tokens and what this instance's lease holds
    again = billing.reserve(store, full, account, 2, "key-1", "fp")
    assert again.replay == {"status": 200, "body": body} and again.handout is None
    while book.close_idle(everything=True):
        pass
    assert tokens(store) == 999 == store.balance("ann")
