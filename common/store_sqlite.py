"""The embedded store: one SQLite file, safe across threads and processes.

Every write runs in a `BEGIN IMMEDIATE` transaction, so concurrent writers
queue on SQLite's lock instead of racing; the spend itself is one conditional
UPDATE (`... WHERE tokens >= ?`), so a balance can never go below zero.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import errors
from common.store import Account, ImageOutcome, Job, Spend

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    key_hash TEXT UNIQUE,
    tokens INTEGER NOT NULL CHECK (tokens >= 0),
    is_admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spends (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    amount INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    response TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    spend_id TEXT NOT NULL,
    amount INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    spend_id TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0,
    unmatched INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    matched TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS job_images (
    job_id TEXT NOT NULL,
    object TEXT NOT NULL,
    outcome TEXT NOT NULL,
    destination TEXT,
    detail TEXT,
    PRIMARY KEY (job_id, object)
);
"""


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(SCHEMA)

    # -- connection and transactions -------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise errors.Unavailable("The account database is busy. Retry in a moment.") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- accounts ----------------------------------------------------------------------

    @staticmethod
    def _account(row: sqlite3.Row | None) -> Account | None:
        if row is None:
            return None
        return Account(row["username"], row["password_hash"], row["tokens"], bool(row["is_admin"]))

    def create_account(self, username: str, password_hash: str, key_hash: str, tokens: int,
                       is_admin: bool = False) -> Account:
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO accounts (username, password_hash, key_hash, tokens, is_admin, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (username, password_hash, key_hash, tokens, int(is_admin), time.time()),
                )
        except sqlite3.IntegrityError:
            raise errors.Conflict(f"The username {username!r} is taken. Choose another one.",
                                  code="username_taken") from None
        return Account(username, password_hash, tokens, is_admin)

    def get_account(self, username: str) -> Account | None:
        row = self._db().execute("SELECT * FROM accounts WHERE username = ?", (username,)).fetchone()
        return self._account(row)

    def account_by_key(self, key_hash: str) -> Account | None:
        row = self._db().execute("SELECT * FROM accounts WHERE key_hash = ?", (key_hash,)).fetchone()
        return self._account(row)

    # the only columns _update_account may name (never user input)
    UPDATABLE = frozenset({"key_hash", "is_admin", "password_hash"})

    def _update_account(self, username: str, column: str, value: Any) -> None:
        assert column in self.UPDATABLE
        with self._write() as db:
            cur = db.execute(f"UPDATE accounts SET {column} = ? WHERE username = ?",  # noqa: S608
                             (value, username))
            if cur.rowcount == 0:
                raise errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")

    def set_key(self, username: str, key_hash: str) -> None:
        self._update_account(username, "key_hash", key_hash)

    def set_admin(self, username: str, is_admin: bool) -> None:
        self._update_account(username, "is_admin", int(is_admin))

    def set_password(self, username: str, password_hash: str) -> None:
        self._update_account(username, "password_hash", password_hash)

    # -- ledger ------------------------------------------------------------------------

    def _balance(self, db: sqlite3.Connection, username: str) -> int:
        row = db.execute("SELECT tokens FROM accounts WHERE username = ?", (username,)).fetchone()
        if row is None:
            raise errors.NotFound(f"There is no account named {username!r}.", code="unknown_user")
        return int(row["tokens"])

    def _charge(self, db: sqlite3.Connection, username: str, amount: int, spend_id: str) -> int:
        cur = db.execute(
            "UPDATE accounts SET tokens = tokens - ? WHERE username = ? AND tokens >= ?",
            (amount, username, amount),
        )
        if cur.rowcount == 0:
            raise errors.InsufficientTokens(self._balance(db, username), amount)
        db.execute(
            "INSERT INTO spends (id, username, amount, created) VALUES (?, ?, ?, ?)",
            (spend_id, username, amount, time.time()),
        )
        return self._balance(db, username)

    def spend(self, username: str, amount: int, spend_id: str) -> Spend:
        with self._write() as db:
            row = db.execute("SELECT response FROM spends WHERE id = ?", (spend_id,)).fetchone()
            if row is not None:
                response = json.loads(row["response"]) if row["response"] else None
                return Spend(spend_id, self._balance(db, username), replayed=True, response=response)
            balance = self._charge(db, username, amount, spend_id)
        return Spend(spend_id, balance)

    def _refund(self, db: sqlite3.Connection, username: str, spend_id: str, amount: int, refund_id: str) -> None:
        if db.execute("SELECT 1 FROM refunds WHERE id = ?", (refund_id,)).fetchone():
            return
        cur = db.execute(
            "UPDATE spends SET refunded = refunded + ? WHERE id = ? AND username = ? AND refunded + ? <= amount",
            (amount, spend_id, username, amount),
        )
        if cur.rowcount == 0:
            return  # never refund more than was spent
        db.execute("INSERT INTO refunds (id, spend_id, amount) VALUES (?, ?, ?)", (refund_id, spend_id, amount))
        db.execute("UPDATE accounts SET tokens = tokens + ? WHERE username = ?", (amount, username))

    def refund(self, username: str, spend_id: str, amount: int, refund_id: str) -> int:
        with self._write() as db:
            self._refund(db, username, spend_id, amount, refund_id)
            return self._balance(db, username)

    def refill(self, username: str, amount: int) -> int:
        with self._write() as db:
            db.execute("UPDATE accounts SET tokens = tokens + ? WHERE username = ?", (amount, username))
            return self._balance(db, username)

    def save_response(self, spend_id: str, response: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute("UPDATE spends SET response = ? WHERE id = ?", (json.dumps(response), spend_id))

    # -- jobs --------------------------------------------------------------------------

    def create_job(self, job: Job, spend_amount: int, spend_id: str) -> Job:
        body = json.dumps({"classes": job.classes, "source": job.source, "min_score": job.min_score})
        with self._write() as db:
            if spend_amount:
                self._charge(db, job.owner, spend_amount, spend_id)
            db.execute(
                "INSERT INTO jobs (id, owner, spend_id, body, status, total, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.owner, spend_id, body, job.status, job.total, job.created),
            )
        return job

    def get_job(self, job_id: str) -> Job | None:
        row = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        body = json.loads(row["body"])
        return Job(id=row["id"], owner=row["owner"], classes=body["classes"], source=body["source"],
                   min_score=body["min_score"], total=row["total"], status=row["status"],
                   processed=row["processed"], matched=json.loads(row["matched"]),
                   unmatched=row["unmatched"], failed=row["failed"], created=row["created"])

    def record_image(self, job_id: str, outcome: ImageOutcome) -> bool:
        with self._write() as db:
            job = db.execute("SELECT owner, spend_id, total, processed, matched FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()
            if job is None:
                raise errors.NotFound(f"There is no job {job_id!r}.", code="unknown_job")
            try:
                db.execute(
                    "INSERT INTO job_images (job_id, object, outcome, destination, detail) VALUES (?, ?, ?, ?, ?)",
                    (job_id, outcome.object, outcome.outcome, outcome.destination, outcome.detail),
                )
            except sqlite3.IntegrityError:
                return False  # a redelivered message: already counted
            matched = json.loads(job["matched"])
            unmatched = failed = 0
            if outcome.outcome == "failed":
                failed = 1
                self._refund(db, job["owner"], job["spend_id"], 1, f"{job_id}:{outcome.object}")
            elif outcome.outcome == "unmatched":
                unmatched = 1
            else:
                matched[outcome.outcome] = matched.get(outcome.outcome, 0) + 1
            processed = job["processed"] + 1
            status = "done" if processed >= job["total"] else "running"
            db.execute(
                "UPDATE jobs SET processed = ?, unmatched = unmatched + ?, failed = failed + ?, matched = ?,"
                " status = ? WHERE id = ?",
                (processed, unmatched, failed, json.dumps(matched), status, job_id),
            )
        return True

    def set_job_status(self, job_id: str, status: str) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
