"""Contract suite of the store port's accounts and ledger, run on SQLite and on the Firestore emulator."""

from __future__ import annotations

import threading
import time

import pytest

from common import errors
from common.store.store import Store


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


def test_spend_refund_refill(store: Store) -> None:
    new_account(store, tokens=3)
    assert store.spend("alice", 2, "s1").balance == 1
    with pytest.raises(errors.InsufficientTokens) as refused:
        store.spend("alice", 2, "s2")
    assert refused.value.balance == 1
    assert store.refund("alice", "s1", 1, "r1") == 2
    assert store.refund("alice", "s1", 1, "r1") == 2  # the same refund twice applies once
    assert store.refund("alice", "s1", 1, "r2") == 3
    assert store.refund("alice", "s1", 1, "r3") == 3  # never more than was spent
    assert store.refund("alice", "unknown", 1, "r4") == 3
    assert store.refill("alice", 10) == 13


def test_spend_replays_with_same_key(store: Store) -> None:
    new_account(store)
    first = store.spend("alice", 1, "alice:k")
    assert not first.replayed and first.balance == 4
    store.save_response("alice:k", {"answer": 42})
    again = store.spend("alice", 1, "alice:k")
    assert again.replayed and again.balance == 4 and again.response == {"answer": 42}


def test_spend_unknown_account(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        store.spend("ghost", 1, "x")


def spend_until_settled(store: Store, spend_id: str, results: list[str]) -> None:
    """A client that retries the retryable error until it is charged or refused."""
    for _ in range(200):
        try:
            store.spend("alice", 1, spend_id)
            results.append("ok")
            return
        except errors.InsufficientTokens:
            results.append("refused")
            return
        except errors.Unavailable:
            time.sleep(0.05)
    results.append("gave-up")


def test_concurrent_spends_never_oversell(store: Store) -> None:
    new_account(store, tokens=20)
    results: list[str] = []
    threads = [threading.Thread(target=spend_until_settled, args=(store, f"s{i}", results)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 20 and results.count("refused") == 20, results
    assert store.get_account("alice").tokens == 0  # type: ignore[union-attr]
    # concurrent refunds of the same spend apply once; none exceed what was spent
    refunds = [threading.Thread(target=lambda: retry(lambda: store.refund("alice", "s0", 1, "r"))) for _ in range(8)]
    for t in refunds:
        t.start()
    for t in refunds:
        t.join()
    assert store.get_account("alice").tokens <= 1  # type: ignore[union-attr]


def retry(fn) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        try:
            fn()
            return
        except errors.Unavailable:
            time.sleep(0.05)


def test_concurrent_same_idempotency_key_spends_once(store: Store) -> None:
    new_account(store, tokens=10)
    results: list[str] = []
    threads = [threading.Thread(target=spend_until_settled, args=(store, "alice:same", results)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 10
    assert store.get_account("alice").tokens == 9  # type: ignore[union-attr]
