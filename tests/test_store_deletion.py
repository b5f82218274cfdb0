"""Contract suite of named keys and account deletion on every store adapter (SQLite, the Firestore emulator,
DynamoDB on moto_server): the one commit that stops an account, a purge killed at every commit boundary and
finished by the sweeper's pass, the name held back, and the neighbour's data untouched."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from common.adapters.backends import get_storage, reset_storage
from common.adapters.deps import Deps
from common.core import errors
from common.core.config import settings
from common.ops import deletion
from common.records.accounts import KEYS, key_record
from common.records.deletions import DELETIONS
from common.records.jobs import IMAGES, JOBS
from common.records.leases import LEASES
from common.records.ledger import SPENDS
from common.records.records import ImageOutcome, Job, ModelRecord
from common.records.store import Store
from common.records.usage import OBJECTS, USAGE
from tests.test_billing_crash import DiesAfter, Killed

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100




def holding(store: Store, storage: Any, name: str) -> None:
    """An account holding one of everything: keys, a session, spends, a job with an image, a model, files."""
    store.create_account(name, "hash", f"key-{name}", 50)
    store.add_named_key(f"named-{name}", key_record(name, "icf_x", "ci", "classify"), 20)
    store.add_key(f"session-{name}", key_record(name, "icf_y", "session", expires=time.time() + 3600))
    store.reserve(name, 2, 60.0)
    job = store.create_job(Job(f"job-{name}", name, ["cat"], "in/", 0.3, 2, created=time.time()), 2,
                           f"{name}:job-spend", [f"users/{name}/in/a.png", f"users/{name}/in/b.png"])
    store.record_image(job.id, ImageOutcome(f"users/{name}/in/a.png", "cat"))
    store.create_model(ModelRecord(name, "pets", "v1", ["cat", "dog"], 4, 1, 4, 0, "train/", status="ready",
                                   spend_id=f"{name}:model"))
    for path in ("in/a.png", "in/b.png", "cat/a.png"):
        key = f"users/{name}/{path}"
        storage.write(key, PNG)
        store.open_space_write(name, key, len(PNG), f"op-{key}", lambda k: None, None)
        store.close_space_write(f"op-{key}", name, key, lambda k: len(PNG))
    storage.write(f"models/{name}/pets/v1/head.npz", b"weights")


def left_of(store: Store, storage: Any, name: str) -> dict[str, int]:
    docs = store.docs
    found = {"keys": len(docs.find(KEYS, "username", name)), "spends": len(docs.find(SPENDS, "username", name)),
             "jobs": len(docs.find(JOBS, "owner", name)), "images": len(docs.find(IMAGES, "job_id", f"job-{name}")),
             "models": len(store.models_of(name)), "files": len(list(storage.list(f"users/{name}/")[0])),
             "model_files": len(list(storage.list(f"models/{name}/")[0])), "usage": int(docs.get(USAGE, name) is not None),
             "objects": sum(docs.get(OBJECTS, f"users/{name}/{p}") is not None for p in ("in/a.png", "cat/a.png"))}
    return {what: n for what, n in found.items() if n}


@pytest.fixture
def storage(backend: str) -> Any:
    reset_storage()
    yield get_storage()
    reset_storage()


def test_one_commit_stops_the_account_and_a_purge_killed_anywhere_is_finished(store: Store, storage: Any) -> None:
    holding(store, storage, "alice")
    holding(store, storage, "bob")
    assert left_of(store, storage, "alice") == left_of(store, storage, "bob") != {}
    store.mark_deleted("alice", time.time() + 3600)
    for key in ("key-alice", "named-alice", "session-alice"):
        assert store.key_and_account(key) is None and store.account_by_key(key) is None
    assert store.get_account("alice") is None
    with pytest.raises(errors.NotFound):
        store.reserve("alice", 1, 60.0)  # nothing more is spent
    with pytest.raises(errors.NotFound):
        store.mark_deleted("alice", time.time() + 3600)  # deleting twice is a 404
    assert store.deletions_due() == ["alice"]
    commits = 0
    while True:  # killed after 0, 1, 2, ... commits: each run starts from what the one before left
        try:
            deletion.purge("alice", Deps(settings, store=Store(DiesAfter(store.docs, commits)), storage=storage))
            break
        except Killed:
            assert store.deletions_due() == ["alice"], "a deletion cut short stays due"
            commits += 1
    assert commits >= 3  # killed at several points before one run got through
    assert left_of(store, storage, "alice") == {}
    assert deletion.purge_due(Deps(settings, store=store, storage=storage)) == []  # finished: nothing due
    assert store.docs.get(DELETIONS, "alice") is None
    assert store.key_and_account("key-bob") is not None and store.key_and_account("named-bob") is not None
    assert left_of(store, storage, "bob") == {"keys": 3, "spends": 3, "jobs": 1, "images": 1, "models": 1,
                                              "files": 3, "model_files": 1, "usage": 1, "objects": 2}


def test_the_sweeper_finishes_a_deletion_the_request_left(store: Store, storage: Any) -> None:
    holding(store, storage, "carol")
    store.mark_deleted("carol", time.time() + 3600)  # the request's commit; then its process died
    assert deletion.purge_due(Deps(settings, store=store, storage=storage)) == ["carol"]
    assert left_of(store, storage, "carol") == {}


def test_a_deleted_name_is_held_back_then_free(store: Store, storage: Any) -> None:
    store.create_account("dave", "hash", "key-dave", 5)
    store.mark_deleted("dave", time.time() + 3600)
    with pytest.raises(errors.Conflict):
        store.create_account("dave", "hash2", "key-dave2", 5)  # still being purged, and held
    deletion.purge("dave", Deps(settings, store=store, storage=storage))
    with pytest.raises(errors.Conflict):
        store.create_account("dave", "hash2", "key-dave2", 5)  # purged, still held
    store.create_account("erin", "hash", "key-erin", 5)
    store.mark_deleted("erin", time.time() - 1)  # no hold left
    with pytest.raises(errors.Conflict):
        store.create_account("erin", "hash2", "key-erin2", 5)  # its old keys are not purged yet
    deletion.purge("erin", Deps(settings, store=store, storage=storage))
    store.create_account("erin", "hash2", "key-erin2", 5)
    assert store.key_and_account("key-erin") is None and store.get_account("erin").tokens == 5  # type: ignore


def test_named_keys_limit_revoke_and_last_used(store: Store) -> None:
    store.create_account("fay", "hash", "key-fay", 5)
    store.create_account("gus", "hash", "key-gus", 5)
    for i in range(3):
        store.add_named_key(f"k{i}", key_record("fay", "icf_", f"k{i}", "all"), 3)
    with pytest.raises(errors.Conflict):
        store.add_named_key("k3", key_record("fay", "icf_", "k3", "all"), 3)
    ids = {doc["name"]: doc["id"] for _, doc in store.keys_of("fay")}
    assert set(ids) == {"default", "k0", "k1", "k2"}
    assert not store.revoke_api_key("gus", ids["k0"]), "another account's key id"
    assert store.revoke_api_key("fay", ids["k0"]) and store.key_and_account("k0") is None
    store.add_named_key("k3", key_record("fay", "icf_", "k3", "all"), 3)  # room again
    store.touch_key("k1", 1000.0, 600.0)
    store.touch_key("k1", 1300.0, 600.0)  # within the interval: no write
    assert store.docs.get(KEYS, "k1")["last_used"] == 1000.0  # type: ignore[index]
    store.touch_key("k0", 2000.0, 600.0)  # revoked: stays so
    assert store.docs.get(KEYS, "k0") is None
    assert store.revoke_keys("fay", keep="k2") == 3  # the default key, k1, k3
    assert [doc["name"] for _, doc in store.keys_of("fay")] == ["k2"]
    store.add_named_key("k4", key_record("fay", "icf_", "k4", "all"), 2)  # the count was set back to 1
    assert store.key_and_account("key-gus") is not None


def test_the_key_limit_holds_under_concurrent_creations(store: Store) -> None:
    store.create_account("hal", "hash", "key-hal", 5)
    made, refused = [], []

    def create(i: int) -> None:
        try:
            store.add_named_key(f"hal-{i}", key_record("hal", "icf_", f"k{i}", "all"), 5)
            made.append(i)
        except errors.Conflict:
            refused.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert (len(made), len(refused)) == (5, 3)
    assert len(store.keys_of("hal")) == 6  # the default key and the five


def test_a_deleted_accounts_lease_spends_reach_the_totals_before_the_purge(store: Store, storage: Any) -> None:
    """The purge deletes spends only once the account's leases closed: a close sums them for the day's totals."""
    store.create_account("erin", "hash", "key-erin", 1000)
    lease_id, block = store.take_lease("erin", 100, 1, 100, 10, time.time() + 90, 2)
    assert block == 100
    settled = store.reserve("erin", 5, 60.0, slot=(lease_id, 0, 0, "n0"))[0]
    store.settle("erin", settled, used=3)
    store.reserve("erin", 4, 60.0, slot=(lease_id, 1, 0, "n1"))  # still in flight when the account goes
    day = time.strftime("%Y-%m-%d", time.gmtime())
    before = store.totals(day)["tokens_spent"]
    store.mark_deleted("erin", time.time() + 3600)
    deps = Deps(settings, store=store, storage=storage)
    assert deletion.purge_due(deps) == []  # a spend is open: the purge waits for it
    assert store.docs.find(SPENDS, "username", "erin")  # its spends are still there to be summed
    store.expire_reservations(time.time() + 120)  # the open one expired: nothing used
    assert deletion.purge_due(deps) == ["erin"]
    assert store.totals(day)["tokens_spent"] == before + 3
    assert (store.docs.get(LEASES, lease_id) or {}).get("returned") == 0  # a deleted account's tokens are gone
    assert left_of(store, storage, "erin") == {}
