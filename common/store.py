"""The store port: accounts, the token ledger and sort jobs, behind one interface.

Two adapters implement it: `store_sqlite` (the embedded default) and
`store_firestore`. The same contract tests run against both. `get_store()`
creates the configured adapter once per process, on first use, so a function
that never touches the store never pays for a client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from common.config import settings
from common.lazy import Lazy


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    tokens: int
    is_admin: bool = False


@dataclass(frozen=True)
class Spend:
    """The outcome of `spend`: a fresh charge, or the replay of an earlier one with the same key."""

    spend_id: str
    balance: int
    replayed: bool = False
    response: dict[str, Any] | None = None


@dataclass
class Job:
    id: str
    owner: str
    classes: list[str]
    source: str
    min_score: float
    total: int
    status: str = "queued"
    processed: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    failed: int = 0
    created: float = 0.0

    def public(self) -> dict[str, Any]:
        percentage = 100.0 if self.total == 0 else round(100.0 * self.processed / self.total, 1)
        return {
            "id": self.id,
            "status": self.status,
            "total": self.total,
            "processed": self.processed,
            "matched": {c: self.matched.get(c, 0) for c in self.classes},
            "unmatched": self.unmatched,
            "failed": self.failed,
            "percentage": percentage,
            "classes": self.classes,
            "source": self.source,
            "min_score": self.min_score,
        }


@dataclass(frozen=True)
class ImageOutcome:
    """What the worker decided for one image of a job: a class name, `unmatched`, or `failed`."""

    object: str
    outcome: str
    destination: str | None = None
    detail: str | None = None


class Store(Protocol):
    # accounts
    def create_account(self, username: str, password_hash: str, key_hash: str, tokens: int,
                       is_admin: bool = False) -> Account: ...
    def get_account(self, username: str) -> Account | None: ...
    def account_by_key(self, key_hash: str) -> Account | None: ...
    def set_key(self, username: str, key_hash: str) -> None: ...
    def set_admin(self, username: str, is_admin: bool) -> None: ...
    def set_password(self, username: str, password_hash: str) -> None: ...
    # ledger
    def spend(self, username: str, amount: int, spend_id: str) -> Spend: ...
    def refund(self, username: str, spend_id: str, amount: int, refund_id: str) -> int: ...
    def refill(self, username: str, amount: int) -> int: ...
    def save_response(self, spend_id: str, response: dict[str, Any]) -> None: ...
    # jobs
    def create_job(self, job: Job, spend_amount: int, spend_id: str) -> Job: ...
    def get_job(self, job_id: str) -> Job | None: ...
    def record_image(self, job_id: str, outcome: ImageOutcome) -> bool: ...
    def set_job_status(self, job_id: str, status: str) -> None: ...
    # housekeeping
    def close(self) -> None: ...


def _open() -> Store:
    if settings().store_backend == "firestore":
        from common.store_firestore import FirestoreStore

        return FirestoreStore(settings().gcp_project)
    from common.store_sqlite import SqliteStore

    return SqliteStore(settings().sqlite_path)


_store: Lazy[Store] = Lazy(_open, lambda store: store.close())
get_store = _store.get
reset_store = _store.reset
