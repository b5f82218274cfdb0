"""What only the DynamoDB adapter does: optimistic retries, its 503, the resent commit, TTL and indexes (moto_server).

The store's rules run on it through the contract suites (`backend` fixture in conftest.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.adapters.store import dynamodb
from common.core import errors
from common.records.port import Tx

DOC = ("counters", "x")


@pytest.fixture
def docs(backend: str) -> Any:
    """The adapter itself (not the metered wrapper), on a fresh table."""
    from common.adapters.backends import get_store
    from common.adapters.store.dynamodb import DynamoDocuments
    from common.records.metered import MeteredDocuments

    metered = get_store().docs
    assert isinstance(metered, MeteredDocuments)
    found = metered.inner
    assert isinstance(found, DynamoDocuments)
    return found


def bump(tx: Tx) -> int:
    n = int((tx.get(*DOC) or {"n": 0})["n"]) + 1
    tx.put(*DOC, {"n": n})
    return n


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_two_racing_read_modify_writes_each_commit_once(docs: Any) -> None:
    """A reads, B commits in between, A's commit is cancelled on the version it read and A runs again: both
    commit once each, nothing is lost."""
    a_read, b_done = threading.Event(), threading.Event()
    attempts: list[int] = []

    def a_work(tx: Tx) -> int:
        attempts.append(1)
        n = bump(tx)
        if len(attempts) == 1:
            a_read.set()
            assert b_done.wait(timeout=60)
        return n

    def b() -> None:
        assert a_read.wait(timeout=60)
        docs.transact(bump)
        b_done.set()

    other = threading.Thread(target=b)
    other.start()
    assert docs.transact(a_work) == 2
    other.join(timeout=60)
    assert len(attempts) == 2 and docs.get(*DOC) == {"n": 2}


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_documents_read_and_not_written_are_guarded(docs: Any) -> None:
    """A transaction that wrote B because of what it read in A runs again when A changed meanwhile."""
    docs.transact(lambda tx: tx.put("flags", "a", {"on": True}))
    runs: list[bool] = []

    def work(tx: Tx) -> None:
        on = (tx.get("flags", "a") or {}).get("on")
        runs.append(bool(on))
        if len(runs) == 1:
            docs.transact(lambda inner: inner.put("flags", "a", {"on": False}))
        tx.put("flags", "b", {"copied": on})

    docs.transact(work)
    assert runs == [True, False] and docs.get("flags", "b") == {"copied": False}


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_contention_that_does_not_clear_is_a_503(docs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb, "DEADLINE", 1.0)

    def always_loses(tx: Tx) -> None:
        bump(tx)
        docs.transact(bump)  # another commit between every read and its commit

    with pytest.raises(errors.Unavailable) as busy:
        docs.transact(always_loses)
    assert busy.value.retry_after == 1  # the http envelope makes it a 503 with Retry-After: 1


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_numbers_keys_and_indexes(docs: Any) -> None:
    doc = {"i": 3, "f": 3.0, "tiny": 1e-300, "big": 2**62, "s": "x", "l": [1, 2.5], "nested": {"a": None}}
    docs.transact(lambda tx: tx.put("any", "a/b#c d", doc))
    assert docs.get("any", "a/b#c d") == doc and isinstance(docs.get("any", "a/b#c d")["f"], float)
    docs.transact(lambda tx: tx.put("api_keys", "h1", {"username": "ann", "expires": 10.5}))
    docs.transact(lambda tx: tx.put("spends", "s1", {"username": "ann", "expires": 10}))
    assert docs.find("api_keys", "username", "ann") == [("h1", {"username": "ann", "expires": 10.5})]
    assert docs.find_below("spends", "expires", 11) == [("s1", {"username": "ann", "expires": 10})]
    assert docs.find_below("spends", "expires", 10) == [] and docs.find_below("spends", "expires", -float("inf")) == []
    with pytest.raises(ValueError):
        docs.find("accounts", "username", "ann")  # not indexed: every charge would pay an index write
    items = {i["pk"]["S"]: i for i in docs.client.scan(TableName=docs.table)["Items"]}
    assert items["api_keys#h1"]["ttl"] == {"N": "11"}  # purged kinds: DynamoDB's TTL may delete them
    assert "ttl" not in items["spends#s1"]  # an expired spend is refunded by the sweeper, never just deleted


class LostReply:
    """A client whose first commit is applied but its reply lost (a 500 after the write)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.commits = inner, list[dict[str, Any]]()

    def transact_write_items(self, **request: Any) -> Any:
        self.commits.append(request)
        if len(self.commits) == 1:
            self.inner.transact_write_items(**request)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "lost"}}, "TransactWriteItems")
        return {}  # DynamoDB answers a resent token with success and applies nothing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_a_commit_whose_reply_was_lost_is_resent_not_rerun(docs: Any) -> None:
    """Re-running the work would read the committed state and charge again; the same request and token are sent."""
    docs.client = LostReply(docs.client)
    runs: list[int] = []

    def work(tx: Tx) -> int:
        runs.append(1)
        return bump(tx)

    assert docs.transact(work) == 1
    first, second = docs.client.commits
    assert runs == [1] and first == second and first["ClientRequestToken"]
    assert docs.get(*DOC) == {"n": 1}


def test_register_and_tokens_functions_on_dynamodb(dynamodb_server: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The auth-only functions under functions-framework with STORE_BACKEND=dynamodb: sign up, balance, refill."""
    from tests.conftest import INTERNAL_SECRET, Api, backend_env, bearer, new_table

    env = {**backend_env("dynamodb", tmp_path_factory.mktemp("api-dynamodb"), None), **new_table(dynamodb_server),
           "ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "root-password", "INTERNAL_SECRET": INTERNAL_SECRET}
    api = Api("dynamodb", env)
    try:
        user = api.register()
        assert user["tokens"] == 5 and api.balance(user["api_key"]) == 5
        r = api.http.post(api.url("tokens", "/refill"), headers=bearer({"api_key": api.admin_key()}),
                          json={"username": user["username"], "amount": 7}, timeout=30)
        assert r.status_code == 200, r.text
        assert api.balance(user["api_key"]) == 12
        assert api.http.post(api.url("register", "/register"), timeout=30,
                             json={"username": user["username"], "password": "another one"}).status_code == 409
    finally:
        api.stop()


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_deleting_a_model_of_many_chunks(store: Any) -> None:
    from tests.test_store_models import new_model

    store.create_account("ann", "x", "k", 500)
    record = new_model(store, "ann", images=200, chunks=200)
    store.delete_model("ann", "pets")
    assert store.get_model_record("ann", "pets") is None
    assert all(store.docs.get("model_chunks", f"{record.reference}/{chunk}") is None for chunk in range(200))
