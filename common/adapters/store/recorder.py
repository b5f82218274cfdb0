"""Record every committed write, per document, with its time: how the scale bench sees hot documents.

A `DocumentStore` wrapper (installed by `common/backends.py` when STORE_RECORD
names a folder) that appends one JSON line per transaction to
`<folder>/<pid>.jsonl`: when it ended, how many times its work ran (a lost race
runs it again), and, when it committed, the documents its committing attempt
wrote or deleted. Only that attempt's writes reach the database, so only they
are recorded. Each process writes its own file with unbuffered appends, so a
killed process loses nothing it committed and the bench merges every process's
files (`read_records`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from common.records.port import Doc, DocumentStore, PassThrough, Tx

T = TypeVar("T")


class _WritesOf:
    """One attempt's transaction, noting which documents it writes."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.written: dict[tuple[str, str], None] = {}  # in order, once each

    def get(self, kind: str, key: str) -> Doc | None:
        return self.tx.get(kind, key)

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.written[(kind, key)] = None
        self.tx.put(kind, key, doc)

    def delete(self, kind: str, key: str) -> None:
        self.written[(kind, key)] = None
        self.tx.delete(kind, key)


class RecordingDocuments(PassThrough):
    """A `DocumentStore` that records each transaction's attempts and committed writes; reads pass through."""

    def __init__(self, inner: DocumentStore, folder: Path | str) -> None:
        super().__init__(inner)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._pid = 0

    def _append(self, entry: dict[str, Any]) -> None:
        if self._fd is None or self._pid != os.getpid():  # a forked child writes its own file
            self._pid = os.getpid()
            self._fd = os.open(self.folder / f"{self._pid}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())

    def transact(self, work: Callable[[Tx], T]) -> T:
        attempts: list[_WritesOf] = []

        def attempt(tx: Tx) -> T:
            attempts.append(_WritesOf(tx))
            return work(attempts[-1])

        try:
            result = self.inner.transact(attempt)
        except BaseException:
            self._append({"t": time.time(), "attempts": len(attempts), "committed": False})
            raise
        written = [list(doc) for doc in attempts[-1].written] if attempts else []
        self._append({"t": time.time(), "attempts": len(attempts), "committed": True, "writes": written})
        return result

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
            self._fd = None
        super().close()


@dataclass(frozen=True)
class Record:
    """One transaction as recorded: when it ended, how many attempts it took, what its commit wrote."""

    t: float
    attempts: int
    committed: bool
    writes: tuple[tuple[str, str], ...]


def read_records(folder: Path | str) -> Iterator[Record]:
    """Every process's records in `folder` (a line cut short by a kill is skipped)."""
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            yield Record(entry["t"], entry["attempts"], entry["committed"],
                         tuple((kind, key) for kind, key in entry.get("writes", ())))
