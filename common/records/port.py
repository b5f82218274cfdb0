"""The store port: a few atomic document primitives that each adapter implements, nothing more.

Every business rule (a spend never goes below zero, a refund is applied once
and never exceeds its spend, a job is done when its last image and output are in, ...)
lives once in `common/records/accounts.py`, `ledger.py` and `jobs.py`, written
against these primitives, like the persistence layer of AWS Powertools'
idempotency utility: the adapter only knows how to read and write documents
atomically. Two adapters implement it: `sqlite.py` (the embedded default; one
`BEGIN IMMEDIATE` transaction) and `firestore.py` (optimistic batches guarded by
the update time of what was read).

A document is a JSON-compatible dict, addressed by a kind (a table or
collection) and a key (any string).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
E = TypeVar("E")
Doc = dict[str, Any]


class Tx(Protocol):
    """One atomic unit of work: what it read is guaranteed unchanged when what it wrote is committed."""

    def get(self, kind: str, key: str) -> Doc | None: ...

    def put(self, kind: str, key: str, doc: Doc) -> None:
        """Write the whole document (it was read in this transaction, or is known to be new)."""
        ...

    def delete(self, kind: str, key: str) -> None: ...


class DocumentStore(Protocol):
    def transact(self, work: Callable[[Tx], T]) -> T:
        """Run `work` atomically. It may be run again after a lost race, so it must have no other effects;
        an `AppError` it raises aborts the transaction and reaches the caller. Contention that does not
        clear is a 503 (`errors.Unavailable`)."""
        ...

    def get(self, kind: str, key: str) -> Doc | None:
        """A consistent read outside any transaction."""
        ...

    def find(self, kind: str, field: str, value: Any, limit: int = 1000) -> list[tuple[str, Doc]]:
        """(key, document) pairs whose top-level `field` equals `value`."""
        ...

    def find_below(self, kind: str, field: str, bound: float, limit: int = 1000) -> list[tuple[str, Doc]]:
        """(key, document) pairs whose numeric top-level `field` is below `bound` (expiry sweeps)."""
        ...

    def find_prefix(self, kind: str, prefix: str, limit: int = 100) -> list[tuple[str, Doc]]:
        """(key, document) pairs whose key begins with `prefix`, in key order, at most `limit` (an admin's
        account search, the audit log newest first). DynamoDB scans for it: admin pages only, never per request."""
        ...

    def close(self) -> None: ...


class PassThrough:
    """A `DocumentStore` wrapper's reads and close, handed to the store it wraps: a wrapper (metered, recorder)
    writes only its own `transact`."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner

    def get(self, kind: str, key: str) -> Doc | None:
        return self.inner.get(kind, key)

    def find(self, kind: str, field: str, value: Any, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self.inner.find(kind, field, value, limit)

    def find_below(self, kind: str, field: str, bound: float, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self.inner.find_below(kind, field, bound, limit)

    def find_prefix(self, kind: str, prefix: str, limit: int = 100) -> list[tuple[str, Doc]]:
        return self.inner.find_prefix(kind, prefix, limit)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # an adapter's own extras (tests reach for them)
        return getattr(self.inner, name)


def transact_then(docs: DocumentStore, work: Callable[[Tx, list[E]], T], after: Callable[[E], None]) -> T:
    """Run `work` in a transaction, then `after` on each thing it appended to the list it is given (a job or a
    training run it ended, reported to the metrics): once, for the attempt that committed only (a retried
    attempt starts with an empty list), and outside the transaction, which must have no other effects."""
    found: list[E] = []

    def attempt(tx: Tx) -> T:
        found.clear()
        return work(tx, found)

    result = docs.transact(attempt)
    for item in found:
        after(item)
    return result
