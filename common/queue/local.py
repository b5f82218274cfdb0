"""The embedded queue: messages kept in SQLite with leases, delivered as CloudEvents to the worker over HTTP.

Durable like a cloud queue, on one machine:
- `publish` commits the messages before it returns; nothing lives only in memory.
- A delivery thread claims a message by taking a lease on it, POSTs it to the
  worker, and deletes it only after a 2xx. A failure leaves it for another try
  after a backoff; a process killed mid-delivery leaves it leased, and it is
  delivered again when the lease runs out (at once, when the next process that
  starts finds its owner dead).
- After `max_attempts` failed deliveries a message becomes a dead letter and
  goes to the dead-letter handler instead, which closes its image's books; a
  dead letter is retried until that handler takes it.

Any process that publishes also delivers, and the local stack starts delivery
at boot, so a restarted stack picks up where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.eventpost import post_event
from common.localfiles import ThreadSqlite

log = logging.getLogger("imageclassify.queue")
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    job_id TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    owner INTEGER
);
CREATE INDEX IF NOT EXISTS messages_available ON messages (available_at);
CREATE INDEX IF NOT EXISTS messages_job ON messages (job_id);
"""


class LocalQueue:
    def __init__(self, path: Path, url: str, dead_letter_url: str, *, headers: dict[str, str] | None = None,
                 lease: float = 60.0, max_attempts: int = 5, workers: int = 4, deliver: bool = True) -> None:
        self.path, self.url, self.dead_letter_url = Path(path), url, dead_letter_url
        self.deliver = deliver  # False: publish only (a short-lived operator command); the stack delivers
        self.headers, self.lease, self.max_attempts, self.workers = headers or {}, lease, max_attempts, workers
        self._db = ThreadSqlite(self.path, synchronous="FULL").get
        self._wake, self._stop = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._db().executescript(SCHEMA)

    # -- the port -----------------------------------------------------------------------

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        now = time.time()
        rows = [(json.dumps(m), m.get("job_id"), now) for m in messages]
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO messages (body, job_id, available_at) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
        if self.deliver:
            self.start()
            self._wake.set()

    def pending(self, job_id: str) -> int:
        """Messages of a job not yet handled (dead letters included)."""
        return int(self._db().execute("SELECT COUNT(*) FROM messages WHERE job_id = ?", (job_id,)).fetchone()[0])

    def depth(self) -> tuple[int, int]:
        """(messages waiting or in flight, dead letters)."""
        row = self._db().execute("SELECT COUNT(*) - COALESCE(SUM(dead), 0), COALESCE(SUM(dead), 0) FROM messages")
        live, dead = row.fetchone()
        return int(live), int(dead)

    # -- delivery -----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in this process (once); leases held by dead processes are released first."""
        with self._lock:
            if self._threads:
                return
            self._release_orphans()
            for i in range(self.workers):
                thread = threading.Thread(target=self._run, name=f"local-queue-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _release_orphans(self) -> None:
        owners = [row[0] for row in self._db().execute("SELECT DISTINCT owner FROM messages WHERE owner IS NOT NULL")]
        for owner in owners:
            if owner != os.getpid() and not _alive(owner):
                self._db().execute("UPDATE messages SET available_at = ?, owner = NULL WHERE owner = ?",
                                   (time.time(), owner))

    def _claim(self) -> tuple[int, str, int, bool] | None:
        db, now = self._db(), time.time()
        if db.execute("SELECT 1 FROM messages WHERE available_at <= ? LIMIT 1", (now,)).fetchone() is None:
            return None  # a plain read (WAL): an idle queue takes no write lock from its publishers
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT id, body, attempts, dead FROM messages WHERE available_at <= ? "
                             "ORDER BY available_at LIMIT 1", (now,)).fetchone()
            if row is not None:
                db.execute("UPDATE messages SET available_at = ?, attempts = attempts + 1, owner = ? WHERE id = ?",
                           (now + self.lease, os.getpid(), row[0]))
        finally:
            db.execute("COMMIT")
        return (row[0], row[1], row[2] + 1, bool(row[3])) if row else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim()
            except sqlite3.Error as exc:
                log.warning("the queue database is busy: %s", exc)
                claimed = None
            if claimed is None:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            self._deliver(*claimed)

    def _deliver(self, message_id: int, body: str, attempts: int, dead: bool) -> None:
        target = self.dead_letter_url if dead else self.url
        try:
            status = post_event(target, json.loads(body), timeout=max(1.0, self.lease - 5), headers=self.headers)
            ok = 200 <= status < 300
        except Exception as exc:  # noqa: BLE001 - any failure is a failed delivery, retried later
            log.warning("delivery of message %d failed: %s", message_id, exc)
            ok = False
        db = self._db()
        if ok:
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        elif not dead and attempts >= self.max_attempts:
            log.error("message %d failed %d deliveries: it goes to the dead-letter handler", message_id, attempts)
            db.execute("UPDATE messages SET dead = 1, attempts = 0, available_at = ?, owner = NULL WHERE id = ?",
                       (time.time(), message_id))
        else:
            delay = min(0.5 * 2 ** (attempts - 1), 30.0)
            db.execute("UPDATE messages SET available_at = ?, owner = NULL WHERE id = ?",
                       (time.time() + delay, message_id))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
