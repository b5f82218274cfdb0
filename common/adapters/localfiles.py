"""Two things every embedded backend does with local files: write one atomically, and open a SQLite file
per thread. Written once here; the bucket folder, the model files, the store and the queue use them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o644  # mkstemp makes 0600; a file we publish is readable like any other


def place_atomic(path: Path, fill: Callable[[str], None], prefix: str | None = None,
                 tmp_dir: Path | None = None) -> None:
    """Fill a temporary file (beside `path`, or in `tmp_dir` on the same file system), then rename it to `path`:
    a reader never sees half a file, and a failure leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=prefix or f".{path.name}.")
    os.close(fd)
    try:
        fill(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, prefix: str | None = None, tmp_dir: Path | None = None) -> None:
    """`data` at `path`, readable like any published file, through `place_atomic`."""

    def fill(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)

    place_atomic(path, fill, prefix, tmp_dir)


def rollback(db: sqlite3.Connection) -> None:
    """End a failed transaction, whatever failed in it: a COMMIT refused for a full disk may leave it open, and a
    connection left inside a transaction would refuse every later BEGIN of its thread."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class ThreadSqlite:
    """One connection per thread to a SQLite file in WAL mode, in autocommit (transactions are explicit)."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path, self.synchronous = Path(path), synchronous
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
