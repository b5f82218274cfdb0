"""Mends from a review of this stop's change as an attacker and a crash would read it (fast: SQLite in a temp
folder, the real services and store rules, no server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from common.accounts import admins
from common.accounts import service as accounts
from common.adapters.store.sqlite import SqliteDocuments
from common.bootstrap import bootstrap
from common.core import errors
from common.core.config import settings
from common.records.port import DocumentStore, PassThrough, Tx
from common.records.store import Store
from common.training.bodies import ModelRequest
from tests.conftest import configure

T = TypeVar("T")


class ReplyLost(PassThrough):
    """A store whose every commit is applied, its reply lost, and the work run again (what Firestore's retry of
    a DeadlineExceeded does)."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)

    def transact(self, work: Callable[[Tx], T]) -> T:
        self.inner.transact(work)
        return self.inner.transact(work)


@pytest.fixture
def sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    configure(monkeypatch, STORE_BACKEND="sqlite", DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "a.db"),
              ADMIN_USERNAME="root", ADMIN_PASSWORD="root-password", BCRYPT_ROUNDS="4")
    return Store(SqliteDocuments(tmp_path / "a.db"))


def test_a_reservation_run_again_after_a_lost_reply_takes_its_tokens_once(sqlite: Store) -> None:
    sqlite.create_account("alice", "hash", "key", 5)
    retried = Store(ReplyLost(sqlite.docs))
    spend_id, balance, _ = retried.reserve("alice", 2, 60)
    assert balance == 3 and sqlite.get_account("alice").tokens == 3  # type: ignore[union-attr]
    assert retried.settle("alice", spend_id, 1) == 4  # and the refund, run twice too, is given once


def test_nobody_signs_up_as_the_configured_admin(sqlite: Store) -> None:
    with pytest.raises(errors.Conflict) as taken:
        accounts.register({"username": "root", "password": "a long password"}, "203.0.113.0",
                          bootstrap(settings, store=sqlite))
    assert taken.value.code == "username_taken"


def test_the_bootstrap_never_promotes_an_account_it_did_not_create(sqlite: Store) -> None:
    sqlite.create_account("root", "someone-else's-hash", "key", 5)  # e.g. signed up before ADMIN_USERNAME was set
    admins.bootstrap_admin(bootstrap(settings, store=sqlite))
    assert not sqlite.get_account("root").is_admin  # type: ignore[union-attr]


def test_the_bootstrap_creates_a_missing_admin(sqlite: Store) -> None:
    admins.bootstrap_admin(bootstrap(settings, store=sqlite))
    assert sqlite.get_account("root").is_admin  # type: ignore[union-attr]


def test_a_refusal_echoes_a_huge_value_cut_short() -> None:
    from common.core import bodies

    with pytest.raises(errors.BadRequest) as refused:
        bodies.convert(ModelRequest, {"name": "pets", "augment": "x" * 4_000_000})
    assert refused.value.code == "bad_augment" and len(refused.value.message) < 300




def test_deleting_a_job_output_frees_its_room(sqlite: Store) -> None:
    """A job's output is counted in a usage shard, its deletion on the account's usage document: the total goes
    back to zero (the document was clamped at zero, so the room was never freed)."""
    from common.records.usage import add_usage

    sqlite.docs.transact(lambda tx: add_usage(tx, "alice", 100, 1, shard="alice:7"))
    assert sqlite.usage("alice") == (100, 1)
    sqlite.docs.transact(lambda tx: add_usage(tx, "alice", -100, -1))  # DELETE /files of that output
    assert sqlite.usage("alice") == (0, 0)
