"""The custom-model record rules on both store adapters (SQLite, the Firestore emulator): a chunk counts once,
exactly one caller starts the fit, refunds are exact, a failed, deleted or stalled run gives every token back."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.core import errors
from common.records.records import ModelRecord
from common.records.store import Store


def new_model(store: Store, owner: str, images: int = 10, chunks: int = 3, labels: int = 2) -> ModelRecord:
    version = uuid.uuid4().hex
    record = ModelRecord(owner=owner, name="pets", version=version, labels=[f"c{i}" for i in range(labels)],
                         images=images, chunks=chunks, chunk_size=-(-images // chunks), augment=0, source="pets/",
                         decoded=[0] * labels, spend_id=f"{owner}:model:{version}")
    return store.create_model(record)


@pytest.fixture
def owner(store: Store) -> str:
    name = f"u{uuid.uuid4().hex[:8]}"
    store.create_account(name, "x", uuid.uuid4().hex, 20)
    return name


def balance(store: Store, owner: str) -> int:
    account = store.get_account(owner)
    assert account is not None
    return account.tokens


def test_create_charges_and_refuses_a_taken_name_or_a_short_balance(store: Store, owner: str) -> None:
    new_model(store, owner)
    assert balance(store, owner) == 10
    with pytest.raises(errors.Conflict):
        new_model(store, owner)
    store.delete_model(owner, "pets")
    with pytest.raises(errors.InsufficientTokens):
        new_model(store, owner, images=21)
    assert balance(store, owner) == 20 and store.get_model_record(owner, "pets") is None


def test_each_chunk_counts_once_and_one_caller_fits(store: Store, owner: str) -> None:
    m = new_model(store, owner)
    args = (owner, "pets", m.version)
    assert store.record_chunk(*args, 0, [3, 0], ["k/bad.png"]) == "recorded"
    assert store.record_chunk(*args, 0, [3, 0], ["k/bad.png"]) == "duplicate"
    assert balance(store, owner) == 11  # the unreadable image refunded once
    with ThreadPoolExecutor(4) as pool:  # the last two chunks, each delivered twice, at once
        outcomes = list(pool.map(lambda c: store.record_chunk(*args, c, [0, 3], []), [1, 2, 1, 2]))
    assert outcomes.count("fit") >= 1 and outcomes.count("recorded") == 1
    record = store.get_model_record(owner, "pets")
    assert record is not None and record.status == "training" and record.chunks_in == 3
    assert record.done == 10 and record.failed == 1 and record.decoded == [3, 6]
    # a redelivery of the chunk that started the fit says fit again (its publication may have been lost); no other
    assert store.record_chunk(*args, record.fit_chunk, [0, 3], []) == "fit"
    assert store.record_chunk(*args, 0, [3, 0], []) == "duplicate"
    started = store.start_fit(*args)
    assert started is not None and started.fit_runs == 1
    assert store.finish_fit(*args, "models/x/", 0.9, 0.8) == "ready"
    assert store.finish_fit(*args, "models/y/", 0.1, 0.1) == "already"
    assert store.start_fit(*args) is None
    record = store.get_model_record(owner, "pets")
    assert record is not None and record.status == "ready" and record.artefacts == "models/x/"
    assert record.fit_runs == 1 and balance(store, owner) == 11
    assert not store.fail_model(*args, "too late")
    store.delete_model(owner, "pets")  # a ready model is not refunded
    assert balance(store, owner) == 11


def test_no_readable_image_of_a_class_fails_and_refunds_everything(store: Store, owner: str) -> None:
    m = new_model(store, owner, chunks=2)
    args = (owner, "pets", m.version)
    assert store.record_chunk(*args, 0, [2, 0], ["a", "b", "c"]) == "recorded"
    assert store.record_chunk(*args, 1, [0, 0], ["d", "e"]) == "failed"
    record = store.get_model_record(owner, "pets")
    assert record is not None and record.status == "failed" and "c1" in (record.error or "")
    assert balance(store, owner) == 20
    assert store.record_chunk(*args, 1, [0, 0], ["d", "e"]) == "duplicate" and balance(store, owner) == 20


def test_delete_while_training_refunds_in_full_and_late_messages_find_nothing(store: Store, owner: str) -> None:
    m = new_model(store, owner)
    args = (owner, "pets", m.version)
    assert store.record_chunk(*args, 0, [2, 0], ["x"]) == "recorded"
    store.delete_model(owner, "pets")
    assert balance(store, owner) == 20
    assert store.record_chunk(*args, 1, [0, 3], ["y"]) == "gone"
    assert store.start_fit(*args) is None and store.finish_fit(*args, "p/", 1.0, 1.0) == "gone"
    assert not store.fail_model(*args, "late") and balance(store, owner) == 20
    with pytest.raises(errors.NotFound):
        store.delete_model(owner, "pets")
    again = new_model(store, owner)  # the same name again: a new version, untouched by the old one's messages
    assert store.record_chunk(*args, 0, [1, 1], []) == "gone"
    record = store.get_model_record(owner, "pets")
    assert record is not None and record.version == again.version and record.chunks_in == 0


def test_sweeper_fails_a_stalled_run(store: Store, owner: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from common.ops import sweeper
    from tests.conftest import configure

    m = new_model(store, owner)
    store.record_chunk(owner, "pets", m.version, 0, [3, 0], ["bad"])
    configure(monkeypatch, JOB_STALL_SECONDS="60", QUEUE_PATH=str(tmp_path / "queue.db"))
    assert sweeper.sweep(time.time())["models_failed"] == []  # not stalled yet
    result = sweeper.sweep(time.time() + 61)
    assert result["models_failed"] == [m.reference]
    from common.adapters.backends import get_store

    record = get_store().get_model_record(owner, "pets")
    assert record is not None and record.status == "failed" and "stalled" in (record.error or "")
    assert balance(get_store(), owner) == 20
    assert sweeper.sweep(time.time() + 120)["models_failed"] == []
