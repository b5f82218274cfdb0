"""The Firestore store adapter: documents in collections named by their kind.

A transaction is optimistic: `work` reads documents, and its writes are queued
on one batch whose updates are guarded by the `update_time` that was read and
whose new documents must not exist yet. A concurrent change fails the
precondition, and the whole attempt runs again (google.api_core's `Retry`,
exponential backoff with jitter); contention that does not clear within the
deadline is a 503 with `Retry-After`. Firestore's own transactions livelock on
the emulator under contention; preconditions take no locks.

Document ids are the SHA-256 of the key (keys may hold `/` and any character);
the key itself is kept in the `_key` field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.core import errors
from common.records.port import Doc

T = TypeVar("T")
# A lost race, or a passing fault: run the attempt again.
RETRYABLE = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted, gexc.Conflict,
             gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.TooManyRequests, gexc.InternalServerError)
RETRY = gretry.Retry(predicate=gretry.if_exception_type(*RETRYABLE), initial=0.005, maximum=0.2,
                     multiplier=2.0, timeout=30.0)


def _doc_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _body(snap: Any) -> Doc:
    doc = dict(snap.to_dict() or {})
    doc.pop("_key", None)
    return doc


class _Tx:
    """Reads go to Firestore (and see this attempt's own writes); writes are buffered, one per document, and
    committed as one batch guarded by what was read."""

    def __init__(self, db: firestore.Client) -> None:
        self.db = db
        self.snaps: dict[tuple[str, str], Any] = {}
        self.pending: dict[tuple[str, str], Doc | None] = {}  # None: delete

    def _ref(self, kind: str, key: str) -> Any:
        return self.db.collection(kind).document(_doc_id(key))

    def get(self, kind: str, key: str) -> Doc | None:
        if (kind, key) in self.pending:
            doc = self.pending[(kind, key)]
            return dict(doc) if doc is not None else None
        snap = self.snaps.get((kind, key))
        if snap is None:
            snap = self.snaps[(kind, key)] = self._ref(kind, key).get()
        return _body(snap) if snap.exists else None

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.pending[(kind, key)] = dict(doc)

    def delete(self, kind: str, key: str) -> None:
        self.pending[(kind, key)] = None

    def commit(self) -> None:
        if not self.pending:
            return
        batch = self.db.batch()
        for (kind, key), doc in self.pending.items():
            ref, snap = self._ref(kind, key), self.snaps.get((kind, key))
            guard = (self.db.write_option(last_update_time=snap.update_time)
                     if snap is not None and snap.exists else None)
            if doc is None:
                batch.delete(ref, option=guard)
            elif guard is not None:  # unchanged since it was read, or the attempt starts over; a whole-document write
                gone = {field: firestore.DELETE_FIELD for field in (snap.to_dict() or {}) if field not in doc}  # type: ignore[union-attr]
                batch.update(ref, {**gone, **doc, "_key": key}, option=guard)
            elif snap is not None:  # it did not exist when read: it must not exist now
                batch.create(ref, {**doc, "_key": key})
            else:
                batch.set(ref, {**doc, "_key": key})
        batch.commit()


class FirestoreDocuments:
    def __init__(self, project: str) -> None:
        self.db = firestore.Client(project=project)

    def _attempt(self, work: Callable[[_Tx], T]) -> T:
        tx = _Tx(self.db)
        result = work(tx)
        tx.commit()
        return result

    def transact(self, work: Callable[[_Tx], T]) -> T:
        try:
            return RETRY(self._attempt)(work)
        except gexc.RetryError as exc:
            raise errors.Unavailable("The account database is busy. Retry in a moment.") from exc

    def get(self, kind: str, key: str) -> Doc | None:
        snap = self.db.collection(kind).document(_doc_id(key)).get()
        return _body(snap) if snap.exists else None

    def _query(self, kind: str, condition: FieldFilter, limit: int) -> list[tuple[str, Doc]]:
        snaps = self.db.collection(kind).where(filter=condition).limit(limit).stream()
        return [(str(s.get("_key")), _body(s)) for s in snaps]

    def find(self, kind: str, field: str, value: Any, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self._query(kind, FieldFilter(field, "==", value), limit)

    def find_below(self, kind: str, field: str, bound: float, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self._query(kind, FieldFilter(field, "<", bound), limit)

    def find_prefix(self, kind: str, prefix: str, limit: int = 100) -> list[tuple[str, Doc]]:
        query = self.db.collection(kind).where(filter=FieldFilter("_key", ">=", prefix))
        if prefix:  # every string that begins with `prefix` sorts below prefix + the highest code point
            query = query.where(filter=FieldFilter("_key", "<", prefix + "\U0010ffff"))
        return [(str(s.get("_key")), _body(s)) for s in query.order_by("_key").limit(limit).stream()]

    def close(self) -> None:
        self.db.close()
