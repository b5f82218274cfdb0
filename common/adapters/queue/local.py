"""The embedded queue: messages kept in SQLite with leases, delivered as CloudEvents to the worker over HTTP.

Durable like a cloud queue, on one machine:
- `publish` commits the messages before it returns; nothing lives only in memory.
- A delivery thread claims a message by taking a lease on it, POSTs it to the
  worker, and deletes it only after a 2xx. A failure leaves it for another try
  after a backoff; a process killed mid-delivery leaves it leased, and it is
  delivered again when the lease runs out (at once, when the next process that
  starts finds its owner dead).
- First deliveries of images go up to `batch` at a time in one event (one
  lease transaction, one POST, one delete for all), which the worker sorts side
  by side on every core; a batch that fails is retried one message at a time.
- After `max_attempts` failed deliveries a message becomes a dead letter and
  goes to the dead-letter handler instead, which closes its image's books; a
  dead letter is retried until that handler takes it.

Delivery is fair between accounts: each claim takes the oldest due message of
the next account in turn (round-robin), so one account's backlog does not delay
another's small job. A delivery thread outlives any failure (a full disk, a
broken database): it logs it, backs off and tries again. A worker that answers
507 (its disk is full) spends no delivery attempt: the message is not at fault.

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

from common.adapters.eventpost import BATCH, MAX_BATCH, post_event
from common.adapters.localfiles import ThreadSqlite, rollback
from common.adapters.storage.port import SPACES as ROOT

log = logging.getLogger("imageclassify.queue")
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    job_id TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    owner INTEGER,
    account TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_available ON messages (available_at);
CREATE INDEX IF NOT EXISTS messages_job ON messages (job_id);
"""
ACCOUNT_INDEX = "CREATE INDEX IF NOT EXISTS messages_account ON messages (account, available_at)"
FULL_DISK_RETRY = 2.0  # seconds before a message whose worker's disk was full is tried again
NEXT_ACCOUNT = ("SELECT account FROM messages INDEXED BY messages_account WHERE account > ? AND available_at <= ? "
                "ORDER BY account LIMIT 1")
FIRST_ACCOUNT = ("SELECT account FROM messages INDEXED BY messages_account WHERE available_at <= ? "
                 "ORDER BY account LIMIT 1")


class LocalQueue:
    def __init__(self, path: Path, url: str, dead_letter_url: str, *, headers: dict[str, str] | None = None,
                 lease: float = 60.0, max_attempts: int = 5, workers: int = 4, deliver: bool = True,
                 stalled_after: float = 30.0, batch: int = 1) -> None:
        self.path, self.url, self.dead_letter_url = Path(path), url, dead_letter_url
        self.stalled_after = stalled_after  # seconds beyond a lease without a delivery: not draining (/healthz)
        self.batch = min(batch, MAX_BATCH)  # images per delivery at most (first deliveries only)
        self.deliver = deliver  # False: publish only (a short-lived operator command); the stack delivers
        self.headers, self.lease, self.max_attempts, self.workers = headers or {}, lease, max_attempts, workers
        self._db = ThreadSqlite(self.path, synchronous="FULL").get
        self._wake, self._stop = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._turn = ""  # the account served last, for round-robin delivery
        self._drained_at = time.monotonic()  # when this process last delivered a message or found none due
        db = self._db()
        db.executescript(SCHEMA)
        if "account" not in [row[1] for row in db.execute("PRAGMA table_info(messages)")]:  # a queue from before
            db.execute("ALTER TABLE messages ADD COLUMN account TEXT NOT NULL DEFAULT ''")
        db.execute(ACCOUNT_INDEX)

    # -- the port -----------------------------------------------------------------------

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        now = time.time()
        rows = [(json.dumps(m), m.get("job_id"), now, account_of(m)) for m in messages]
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO messages (body, job_id, available_at, account) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
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

    def stalled(self) -> str | None:
        """Why the queue is not draining (messages due and none delivered for a while), or None."""
        if not self._stop.is_set() and any(not t.is_alive() for t in self._threads):
            return "a delivery thread has stopped"
        db, limit = self._db(), self.lease + self.stalled_after
        if self._threads:  # delivering here: stalled when messages wait and none was delivered for a while
            idle = time.monotonic() - self._drained_at
            waiting = idle > limit and db.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None
        else:  # delivered elsewhere, or by no one: stalled when a message has been due for a while
            idle = limit
            waiting = db.execute("SELECT 1 FROM messages WHERE available_at < ? LIMIT 1",
                                 (time.time() - limit,)).fetchone() is not None
        return f"messages wait and none was delivered for {int(idle)}s" if waiting else None

    # -- delivery -----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in this process (once); leases held by dead processes are released first."""
        with self._lock:
            if self._threads:
                return
            try:
                self._release_orphans()
            except sqlite3.Error as exc:  # their leases run out all the same
                log.error("could not release the leases of dead processes: %s", exc)
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
        claimed = self._claim_batch(1)
        return claimed[0] if claimed else None

    def _claim_batch(self, limit: int) -> list[tuple[int, str, int, bool]]:
        """Lease up to `limit` due messages in one transaction, taken in turn as one at a time would be. Only
        first deliveries of images share a batch: a retry, a dead letter or a training step goes alone."""
        db, now = self._db(), time.time()
        if db.execute("SELECT 1 FROM messages WHERE available_at <= ? LIMIT 1", (now,)).fetchone() is None:
            if db.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is None:
                self._drained_at = time.monotonic()
            return []  # a plain read (WAL): an idle queue takes no write lock from its publishers
        rows: list[tuple[int, str, int, int, str, str | None]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            while len(rows) < limit and (not rows or _batchable(rows[-1])):
                row = self._next(db, now)
                if row is None or (rows and not _batchable(row)):
                    break
                db.execute("UPDATE messages SET available_at = ?, attempts = attempts + 1, owner = ? WHERE id = ?",
                           (now + self.lease, os.getpid(), row[0]))
                rows.append(row)
                self._turn = row[4]
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return [(row[0], row[1], row[2] + 1, bool(row[3])) for row in rows]

    def _next(self, db: sqlite3.Connection, now: float) -> tuple[int, str, int, int, str, str | None] | None:
        """The oldest due message of the next account (in name order, wrapping around) with one due after the
        account this process served last: round-robin. Each process keeps its own turn; a restart starts over."""
        after = db.execute(NEXT_ACCOUNT, (self._turn, now)).fetchone() or db.execute(FIRST_ACCOUNT, (now,)).fetchone()
        if after is None:
            return None
        return db.execute("SELECT id, body, attempts, dead, account, job_id FROM messages INDEXED BY messages_account "
                          "WHERE account = ? AND available_at <= ? ORDER BY available_at LIMIT 1", (after[0], now)
                          ).fetchone()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                claimed = self._claim_batch(self.batch)
                if len(claimed) == 1:
                    self._deliver(*claimed[0])
                elif claimed:
                    self._deliver_batch(claimed)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a full disk or a broken database must not end delivery
                failures += 1
                log.error("the queue could not deliver (%s: %s); trying again", type(exc).__name__, exc)
                self._stop.wait(min(0.2 * 2 ** failures, 5.0))
                continue
            if not claimed:
                self._wake.wait(0.2)
                self._wake.clear()

    def _deliver(self, message_id: int, body: str, attempts: int, dead: bool) -> None:
        leased_until = time.monotonic() + self.lease
        self._settle_delivery(self._post(self.dead_letter_url if dead else self.url, json.loads(body)),
                              leased_until, message_id, attempts, dead)

    def _deliver_batch(self, claimed: list[tuple[int, str, int, bool]]) -> None:
        """Several images in one event (`{"batch": [...]}`): the worker sorts them side by side, on every core,
        and answers 2xx only when every one is done; otherwise each is settled as a failed delivery of its own
        (and retried alone: a message that fails cannot hold others back)."""
        leased_until = time.monotonic() + self.lease
        status = self._post(self.url, {BATCH: [json.loads(body) for _, body, _, _ in claimed]})
        if 200 <= status < 300:
            self._drained_at = time.monotonic()
            self._settle(leased_until, "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))",
                         json.dumps([message_id for message_id, _, _, _ in claimed]))
            return
        for message_id, _, attempts, dead in claimed:
            self._settle_delivery(status, leased_until, message_id, attempts, dead)

    def _post(self, target: str, data: Any) -> int:
        """The worker's answer to one delivery; 0 when there was none."""
        try:
            return post_event(target, data, timeout=max(1.0, self.lease - 5), headers=self.headers)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed delivery, retried later
            log.warning("a delivery to %s failed: %s", target, exc)
            return 0

    def _settle_delivery(self, status: int, leased_until: float, message_id: int, attempts: int, dead: bool) -> None:
        if 200 <= status < 300:
            self._drained_at = time.monotonic()
            self._settle(leased_until, "DELETE FROM messages WHERE id = ?", message_id)
        elif status == 507:  # the worker's disk is full: not the message's fault, so no attempt is spent
            log.warning("message %d: the worker's disk is full; it is tried again", message_id)
            self._settle(leased_until, "UPDATE messages SET attempts = attempts - 1, available_at = ?, owner = NULL "
                         "WHERE id = ?", time.time() + FULL_DISK_RETRY, message_id)
        elif not dead and attempts >= self.max_attempts:
            log.error("message %d failed %d deliveries: it goes to the dead-letter handler", message_id, attempts)
            self._settle(leased_until, "UPDATE messages SET dead = 1, attempts = 0, available_at = ?, owner = NULL "
                         "WHERE id = ?", time.time(), message_id)
        else:
            delay = min(0.5 * 2 ** (attempts - 1), 30.0)
            self._settle(leased_until, "UPDATE messages SET available_at = ?, owner = NULL WHERE id = ?",
                         time.time() + delay, message_id)

    def _settle(self, leased_until: float, sql: str, *args: Any) -> None:
        """Record a delivery's outcome, retried while the lease holds (a full disk may refuse it for a while);
        past the lease the message is another delivery's, and it is simply delivered again."""
        delay = 0.2
        while True:
            try:
                self._db().execute(sql, args)
                return
            except sqlite3.Error as exc:
                if self._stop.is_set() or time.monotonic() + delay > leased_until - 1:
                    raise
                log.warning("recording a delivery failed (%s); trying again", exc)
                self._stop.wait(delay)
                delay = min(2 * delay, 5.0)


def _batchable(row: tuple[int, str, int, int, str, str | None]) -> bool:
    """A first delivery of one image of a job (not a retry, a dead letter or a training step)."""
    return row[2] == 0 and not row[3] and row[5] is not None


def account_of(message: dict[str, Any]) -> str:
    """Whose message it is, for fair delivery: a training run's owner, or the space its image lies in."""
    owner, key = message.get("owner"), message.get("object")
    if isinstance(owner, str):
        return owner
    if isinstance(key, str) and key.startswith(ROOT):
        return key[len(ROOT):].split("/", 1)[0]
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
