"""The embedded store adapter: documents in one SQLite file, safe across threads and processes.

Every transaction is `BEGIN IMMEDIATE`: concurrent writers queue on SQLite's
write lock instead of racing, so what a transaction read cannot change before
it commits. WAL mode lets readers run beside the one writer. The threads of one
process first queue on a lock of their own: SQLite's busy handler waits by
sleeping and polling (1, 2, 5, 10 ms ...), so writers of one process that met
on its lock would sleep past the moment it is free; other processes still meet
on SQLite's lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from common.adapters.localfiles import ThreadSqlite, rollback
from common.core import errors
from common.records.port import Doc

T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
-- an account's usage history finds its spends by account and day without reading anyone else's
CREATE INDEX IF NOT EXISTS docs_usage_day ON docs (kind, json_extract(body, '$.usage_day'));
"""


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, kind: str, key: str) -> Doc | None:
        return _read(self.db, kind, key)

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.db.execute("INSERT OR REPLACE INTO docs (kind, key, body) VALUES (?, ?, ?)",
                        (kind, key, json.dumps(doc, separators=(",", ":"))))

    def delete(self, kind: str, key: str) -> None:
        self.db.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))


def _read(db: sqlite3.Connection, kind: str, key: str) -> Doc | None:
    row = db.execute("SELECT body FROM docs WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return json.loads(row[0]) if row else None


class SqliteDocuments:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connections = ThreadSqlite(self.path)
        self._db = self._connections.get
        self._writer = threading.RLock()  # re-entrant: a nested transaction fails in SQLite, as it would without
        self._db().executescript(SCHEMA)

    def transact(self, work: Callable[[_Tx], T]) -> T:
        with self._writer:
            return self._transact(work)

    def _transact(self, work: Callable[[_Tx], T]) -> T:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise errors.Unavailable("The account database is busy. Retry in a moment.") from exc
        try:
            result = work(_Tx(db))
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return result

    def get(self, kind: str, key: str) -> Doc | None:
        return _read(self._db(), kind, key)

    def _select(self, kind: str, condition: str, value: Any, limit: int) -> list[tuple[str, Doc]]:
        rows = self._db().execute(
            f"SELECT key, body FROM docs WHERE kind = ? AND {condition} LIMIT ?",  # noqa: S608 - fixed conditions
            (kind, value, limit)).fetchall()
        return [(key, json.loads(body)) for key, body in rows]

    def find(self, kind: str, field: str, value: Any, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self._select(kind, f"json_extract(body, '$.{_field(field)}') = ?", value, limit)

    def find_below(self, kind: str, field: str, bound: float, limit: int = 1000) -> list[tuple[str, Doc]]:
        return self._select(kind, f"json_extract(body, '$.{_field(field)}') < ?", bound, limit)

    def find_prefix(self, kind: str, prefix: str, limit: int = 100) -> list[tuple[str, Doc]]:
        rows = self._db().execute(  # the primary key's order: a range, not a scan
            "SELECT key, body FROM docs WHERE kind = ? AND key >= ? AND key < ? AND substr(key, 1, ?) = ? "
            "ORDER BY key LIMIT ?", (kind, prefix, prefix + "\U0010ffff", len(prefix), prefix, limit)).fetchall()
        return [(key, json.loads(body)) for key, body in rows]

    def close(self) -> None:
        self._connections.close()


def _field(name: str) -> str:
    """Field names come from our code, never from a request; refuse anything else all the same."""
    if not name.isidentifier():
        raise ValueError(f"not a field name: {name!r}")
    return name
