"""Contract suite of the store port's accounts and ledger, run on SQLite and on the Firestore emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from common.core import errors
from common.http.envelope import status_of
from common.records.store import Store


def new_account(store: Store, name: str = "alice", tokens: int = 5, admin: bool = False) -> None:
    store.create_account(name, "hash", f"key-{name}", tokens, is_admin=admin)


def test_create_and_get(store: Store) -> None:
    new_account(store)
    account = store.get_account("alice")
    assert account is not None
    assert (account.username, account.tokens, account.is_admin) == ("alice", 5, False)
    assert store.get_account("nobody") is None


def test_duplicate_username_conflicts(store: Store) -> None:
    new_account(store)
    with pytest.raises(errors.Conflict):
        new_account(store)


def test_key_lookup_and_rotation(store: Store) -> None:
    new_account(store)
    assert store.account_by_key("key-alice").username == "alice"  # type: ignore[union-attr]
    store.set_key("alice", "key-new")
    assert store.account_by_key("key-alice") is None
    assert store.account_by_key("key-new").username == "alice"  # type: ignore[union-attr]
    with pytest.raises(errors.NotFound):
        store.set_key("nobody", "k")


def test_admin_and_password(store: Store) -> None:
    new_account(store)
    store.set_admin("alice", True)
    store.set_password("alice", "hash2")
    account = store.get_account("alice")
    assert account is not None and account.is_admin and account.password_hash == "hash2"


def test_reserve_refund_refill(store: Store) -> None:
    new_account(store, tokens=3)
    spend_id, balance, replay = store.reserve("alice", 2, 60)
    assert balance == 1 and replay is None
    with pytest.raises(errors.InsufficientTokens) as refused:
        store.reserve("alice", 2, 60)
    assert refused.value.balance == 1
    assert store.refund("alice", spend_id, 1, "r1") == 2
    assert store.refund("alice", spend_id, 1, "r1") == 2  # the same refund twice applies once
    assert store.refund("alice", spend_id, 1, "r2") == 3
    assert store.refund("alice", spend_id, 1, "r3") == 3  # never more than was spent
    assert store.refund("alice", "unknown", 1, "r4") == 3
    assert store.refill("alice", 10) == 13


def test_reserve_unknown_account(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        store.reserve("ghost", 1, 60)


def reserve_until_answered(store: Store, key: str | None, results: list[str]) -> None:
    """A client that retries the retryable error (503, a lost commit race) until it gets an answer."""
    for _ in range(200):
        try:
            spend_id, _, _ = store.reserve("alice", 1, 60, key, "fp")
            results.append(f"ok:{spend_id}")
            return
        except errors.InsufficientTokens:
            results.append("refused")
            return
        except errors.Conflict as exc:
            results.append(exc.code)
            return
        except errors.Unavailable:
            time.sleep(0.05)
    raise AssertionError("still 503 after 200 tries")


def test_concurrent_reservations_never_oversell(store: Store) -> None:
    new_account(store, tokens=20)
    results: list[str] = []
    threads = [threading.Thread(target=reserve_until_answered, args=(store, None, results)) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    charged = [r.split(":", 1)[1] for r in results if r.startswith("ok:")]
    assert len(charged) == 20 and results.count("refused") == 20, results
    assert store.get_account("alice").tokens == 0  # type: ignore[union-attr]
    # concurrent refunds of the same spend apply once; none exceed what was spent
    refunds = [threading.Thread(target=retry, args=(lambda: store.refund("alice", charged[0], 1, "r"),))
               for _ in range(8)]
    for t in refunds:
        t.start()
    for t in refunds:
        t.join()
    assert store.get_account("alice").tokens == 1  # type: ignore[union-attr]


def retry(fn: Callable[[], object]) -> None:
    for _ in range(200):
        try:
            fn()
            return
        except errors.Unavailable:
            time.sleep(0.05)
    raise AssertionError("still 503 after 200 tries")


def test_concurrent_same_idempotency_key_reserves_once(store: Store) -> None:
    new_account(store, tokens=10)
    results: list[str] = []
    threads = [threading.Thread(target=reserve_until_answered, args=(store, "same", results)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.startswith("ok:") for r in results) == 1 and results.count("request_in_progress") == 9, results
    assert store.get_account("alice").tokens == 9  # type: ignore[union-attr]


def test_keyed_reservation_replays_only_the_same_request(store: Store) -> None:
    new_account(store, tokens=10)
    spend_id, balance, replay = store.reserve("alice", 2, 60, "k1", "fp-a")
    assert balance == 8 and replay is None
    with pytest.raises(errors.Conflict):  # still running
        store.reserve("alice", 2, 60, "k1", "fp-a")
    assert store.settle("alice", spend_id, 1, "k1", reply(1)) == 9
    again = store.reserve("alice", 2, 60, "k1", "fp-a")
    assert again == (spend_id, 9, {"status": 200, "body": {"n": 1}})  # replayed, charged nothing
    with pytest.raises(errors.UnprocessableRequest) as reused:
        store.reserve("alice", 2, 60, "k1", "fp-b")
    assert reused.value.code == "idempotency_key_reused"
    assert store.get_account("alice").tokens == 9  # type: ignore[union-attr]


def test_failed_attempt_runs_again(store: Store) -> None:
    new_account(store, tokens=10)
    first, _, _ = store.reserve("alice", 3, 60, "k2", "fp")
    assert store.settle("alice", first, 1, "k2", failed=True) == 9
    second, balance, replay = store.reserve("alice", 3, 60, "k2", "fp")
    assert second != first and replay is None and balance == 6


def test_reservation_expires_once_and_late_settle_changes_nothing(store: Store) -> None:
    new_account(store, tokens=10)
    spend_id, _, _ = store.reserve("alice", 4, 0.01, "k3", "fp")
    later = time.time() + 60  # the sweeper's clock, past the lease: no sleep
    assert store.expire_reservations(now=later) == 1
    assert store.expire_reservations(now=later) == 0
    assert store.get_account("alice").tokens == 10  # type: ignore[union-attr]
    with pytest.raises(errors.AppError) as late:  # the request finished after all: refused, never served free
        store.settle("alice", spend_id, 4)
    assert status_of(late.value) == 503 and late.value.code == "reservation_expired"
    assert store.get_account("alice").tokens == 10  # type: ignore[union-attr]
    _, balance, replay = store.reserve("alice", 1, 60, "k3", "fp")  # its key expired with it: runs again
    assert replay is None and balance == 9


def settle_unless_expired(store: Store, spend_id: str) -> None:
    try:
        store.settle("alice", spend_id, 1)
    except errors.AppError as exc:
        assert exc.code == "reservation_expired"


def reply(n: int) -> Callable[[int], dict]:
    """A reply to keep for a key, built from the balance the settling commit leaves."""
    return lambda balance: {"status": 200, "body": {"n": n}}


def test_concurrent_expiry_and_settle_refund_once(store: Store) -> None:
    new_account(store, tokens=50)
    ids = [store.reserve("alice", 2, 0.01)[0] for _ in range(10)]
    later = time.time() + 60  # the sweeper's clock, past the leases: no sleep
    threads = [threading.Thread(target=store.expire_reservations, kwargs={"now": later})] + [
        threading.Thread(target=settle_unless_expired, args=(store, i)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.expire_reservations(now=later)
    tokens = store.get_account("alice").tokens  # type: ignore[union-attr]
    assert 30 + 10 <= tokens <= 50  # each reservation refunded exactly once: by settle (1) or expiry (2)


def test_expired_sign_up_windows_and_idempotency_keys_are_purged(store: Store) -> None:
    """The sweeper deletes what is read as absent anyway, so neither piles up (one window per address a minute)."""
    new_account(store, tokens=10)
    store.admit_signup("203.0.113.7", 5, 60, window=60, now=1000.0)  # its windows end at 1020
    spend_id, _, _ = store.reserve("alice", 1, 60, "k", "fp")
    store.settle("alice", spend_id, 1, "k", reply(1))  # replayable for a day
    assert store.purge_expired(now=1100.0) == 2  # the windows (the address's, the global); the key still replays
    assert store.reserve("alice", 1, 60, "k", "fp")[2] == {"status": 200, "body": {"n": 1}}
    later = time.time() + 10 * 24 * 3600
    assert store.purge_expired(now=later) == 1 and store.purge_expired(now=later) == 0
    assert store.reserve("alice", 1, 60, "k", "fp")[2] is None  # gone: a new request with that key runs again


def test_settle_keeps_the_reply_with_the_balance_of_its_own_commit(store: Store) -> None:
    new_account(store, tokens=10)
    spend_id, _, _ = store.reserve("alice", 3, 60, "k", "fp")
    balance = store.settle("alice", spend_id, 1, "k", lambda b: {"status": 200, "body": {"tokens_remaining": b}})
    assert balance == 9
    assert store.reserve("alice", 3, 60, "k", "fp")[2] == {"status": 200, "body": {"tokens_remaining": 9}}


def test_a_retry_taking_over_an_expired_key_closes_the_first_attempt(store: Store) -> None:
    """A slow attempt whose lease ran out before any sweep: the retry runs, the first attempt is refunded and
    its late settle refused, so the key costs once."""
    new_account(store, tokens=10)
    first, _, _ = store.reserve("alice", 2, 0.01, "k", "fp")
    time.sleep(0.05)
    second, balance, replay = store.reserve("alice", 2, 60, "k", "fp")
    assert replay is None and balance == 8  # the first attempt's 2 came back
    with pytest.raises(errors.AppError) as late:
        store.settle("alice", first, 2, "k", reply(1))
    assert late.value.code == "reservation_expired"
    assert store.settle("alice", second, 2, "k", reply(2)) == 8
    assert store.reserve("alice", 2, 60, "k", "fp")[2] == {"status": 200, "body": {"n": 2}}


def test_release_holder_refunds_a_dead_process_reservations_only(store: Store) -> None:
    new_account(store, tokens=10)
    dead, _, _ = store.reserve("alice", 3, 900, "k", "fp", holder="stack-1")
    alive, _, _ = store.reserve("alice", 2, 900, holder="stack-2")
    done, _, _ = store.reserve("alice", 1, 900, holder="stack-1")
    store.settle("alice", done, 1)
    assert store.get_account("alice").tokens == 4  # type: ignore[union-attr]
    assert store.release_holder("stack-1") == 1 and store.release_holder("stack-1") == 0
    assert store.get_account("alice").tokens == 7  # type: ignore[union-attr]
    _, balance, replay = store.reserve("alice", 3, 60, "k", "fp")  # its key runs again at once, not after 900 s
    assert replay is None and balance == 4
    with pytest.raises(errors.AppError):
        store.settle("alice", dead, 3, "k", reply(1))
    assert store.settle("alice", alive, 2) == 4  # another holder's reservation is untouched


def test_expiry_with_an_injected_clock_frees_the_key_at_once(store: Store) -> None:
    new_account(store, tokens=10)
    store.reserve("alice", 4, 120, "k", "fp")
    assert store.expire_reservations(now=time.time() + 60) == 0  # inside its lease: held
    assert store.expire_reservations(now=time.time() + 121) == 1
    assert store.get_account("alice").tokens == 10  # type: ignore[union-attr]
    _, balance, replay = store.reserve("alice", 4, 120, "k", "fp")  # its key failed with it: runs again
    assert replay is None and balance == 6
