"""Store rules of the abuse limits and of console session keys, on SQLite and on the Firestore emulator."""

from __future__ import annotations

import pytest

from common.core import errors
from common.ops.sweeper import sweep
from common.records.accounts import KEYS, key_record
from common.records.store import Store
from common.records.throttles import FAILURES, MAX_LOCK, MEMORY


def fail(store: Store, name: str, network: str, times: int, now: float) -> None:
    for i in range(times):
        store.login_failed(name, network, 5, now=now + i * 0.001)


def test_failure_records_of_unknown_names_expire_and_are_purged(store: Store) -> None:
    """A flood of random names leaves one record each; they are read as absent after a quiet day, then deleted."""
    for i in range(20):
        fail(store, f"ghost-{i}", "198.51.100.7", 1, now=1000.0)
    fail(store, "ghost-locked", "198.51.100.7", 30, now=1000.0)  # locked at the longest
    with pytest.raises(errors.TooManyRequests):
        store.check_login("ghost-locked", "198.51.100.7", now=1000.0 + MAX_LOCK - 5)
    assert store.purge_expired(now=1000.0 + MEMORY - 5) == 0  # still remembered
    later = 1000.0 + MAX_LOCK + MEMORY + 5
    store.check_login("ghost-locked", "198.51.100.7", now=later)  # forgotten: no 429, even before the purge
    assert sweep(now=later)["expired_records_deleted"] == 21  # what the sweeper runs
    assert store.docs.find_below(FAILURES, "expires", float("inf")) == []


def test_a_lock_holds_for_the_guessing_network_only(store: Store) -> None:
    fail(store, "alice", "198.51.100.7", 8, now=1000.0)
    with pytest.raises(errors.TooManyRequests) as locked:
        store.check_login("alice", "198.51.100.7", now=1001.0)
    assert locked.value.code == "too_many_attempts"
    store.check_login("alice", "203.0.113.9", now=1001.0)  # the owner elsewhere is not locked
    store.login_succeeded("alice", "203.0.113.9")  # and their success does not unlock the guesser
    with pytest.raises(errors.TooManyRequests):
        store.check_login("alice", "198.51.100.7", now=1001.0)


def test_the_global_sign_up_limit_counts_networks_not_sign_ups(store: Store) -> None:
    """Three a minute per network, four networks a minute: four networks sign up in full, a fifth is refused,
    and a refused sign-up counts nothing."""
    for network in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"):
        for _ in range(3):
            store.admit_signup(network, 3, 4, now=1000.0)
        with pytest.raises(errors.TooManyRequests):
            store.admit_signup(network, 3, 4, now=1000.0)
    with pytest.raises(errors.TooManyRequests) as refused:
        store.admit_signup("192.0.2.5", 3, 4, now=1000.0)
    assert refused.value.code == "rate_limited"
    store.admit_signup("192.0.2.5", 3, 4, now=1060.0)  # the next minute


def test_session_keys_are_extra_keys_that_expire_and_are_revoked_by_id(store: Store) -> None:
    store.create_account("alice", "hash", "key-alice", 5, prefix="icf_abcd")
    store.create_account("bob", "hash", "key-bob", 5)
    first, second = (key_record("alice", "icf_s", "session", expires=2000.0) for _ in range(2))
    store.add_key("session-1", first)
    store.add_key("session-2", second)
    with pytest.raises(errors.NotFound):
        store.add_key("session-x", key_record("nobody", "icf_s", "session", expires=2000.0))
    for key in ("key-alice", "session-1", "session-2"):
        assert store.account_by_key(key, now=1000.0).username == "alice"  # type: ignore[union-attr]
    store.set_key("alice", "key-new")  # rotating the API key leaves the sessions alone
    assert store.account_by_key("session-1", now=1000.0) is not None
    assert not store.revoke_key("bob", first["id"], "session")  # another's session: not found
    assert not store.revoke_key("alice", "no-such-id", "session")
    assert store.revoke_key("alice", first["id"], "session")
    assert store.account_by_key("session-1", now=1000.0) is None
    assert store.account_by_key("session-2", now=1000.0) is not None
    assert not store.revoke_key("alice", store.docs.get(KEYS, "key-new")["id"], "session")  # type: ignore[index]
    assert store.account_by_key("session-2", now=2000.0) is None  # expired: refused before the sweeper runs
    assert store.purge_expired(now=2000.5) == 1 and store.account_by_key("key-new") is not None
    records = sorted(doc["name"] for _, doc in store.docs.find(KEYS, "username", "alice"))
    assert records == ["default"]
    assert {"id", "name", "prefix", "scope", "created"} <= set(store.docs.get(KEYS, "key-new") or {})
