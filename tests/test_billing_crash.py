"""A process killed between any two commits of a keyed classify: the key costs once, and its retry replays or runs.

The request runs in this process on the real store (SQLite and the Firestore
emulator) and the real model; the kill is simulated at every commit boundary
of the request: the store refuses every transaction after the n-th, as a dead
process would make none. Then the recovery a restart or the sweeper makes, and
the retry with the same Idempotency-Key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from common.adapters.backends import get_store
from common.adapters.deps import Deps
from common.classify import service as classify
from common.classify.request import ClassifyRequest, Item
from common.core.config import settings
from common.http.envelope import present
from common.records.metered import MeteredDocuments
from common.records.records import Account
from infra import photos

T = TypeVar("T")


class Killed(BaseException):
    """kill -9: nothing after it runs, no handler sees it as an error to recover from."""


class DiesAfter:
    """A document store whose process dies after `commits` transactions."""

    def __init__(self, inner: Any, commits: int) -> None:
        self.inner, self.left = inner, commits

    def transact(self, work: Callable[[Any], T]) -> T:
        if self.left <= 0:
            raise Killed
        self.left -= 1
        return self.inner.transact(work)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def request() -> ClassifyRequest:
    return ClassifyRequest([Item("bytes", photos.data("coffee.png"))], batch=False)


@pytest.mark.parametrize("commits", [0, 1, 2, 3])
@pytest.mark.parametrize("recovery", ["sweeper", "restart"])
def test_kill_between_any_two_commits_charges_a_key_once(backend: str, commits: int, recovery: str, models_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELS_DIR", str(models_dir))
    monkeypatch.setenv("RESERVATION_HOLDER", "stack-1")
    settings.cache_clear()
    store = get_store()
    deps = Deps(settings(), store=store)  # what the classify function hands the service
    store.create_account("ann", "hash", "key-hash", 10)
    account = Account("ann", "hash", 10)
    metered = store.docs
    assert isinstance(metered, MeteredDocuments)
    real = metered.inner
    metered.inner = DiesAfter(real, commits)
    try:
        status, body = classify.run(account, request(), "key-1", deps, present)
        assert commits >= 2 and status == 200  # lived through every commit it needs
    except Killed:
        pass
    metered.inner = real  # the next process
    if recovery == "restart":  # the local stack's next start releases what its dead predecessor held
        store.release_holder("stack-1")
    else:  # the cloud: the sweeper, once the lease is over
        store.expire_reservations(now=time.time() + settings().billing.reservation_lease + 1)
    status, body = classify.run(account, request(), "key-1", deps, present)  # the client's retry: replayed or run, never 409
    assert status == 200 and body["predictions"][0]["label"] == "espresso", body
    assert body["tokens_remaining"] == 9
    assert store.get_account("ann").tokens == 9  # type: ignore[union-attr]
    assert classify.run(account, request(), "key-1", deps, present) == (status, body)  # and from now on replayed
