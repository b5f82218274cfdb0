"""Two things every embedded backend does with local files: write one atomically, and open a SQLite file
per thread. Written once here; the bucket folder, the model files, the store and the queue use them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from pathlib import Path

FILE_MODE = 0o644  # mkstemp makes 0600; a file we publish is readable like any other


def write_atomic(path: Path, data: bytes, prefix: str | None = None, tmp_dir: Path | None = None) -> None:
    """Write to a temporary name (beside `path`, or in `tmp_dir` on the same file system), then rename: a reader
    never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=prefix or f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # never leave the temporary file behind
            os.unlink(tmp)
        raise


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
