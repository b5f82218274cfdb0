"""The embedded queue's file from before fair delivery still opens, and its messages are delivered in turn."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.adapters.queue.local import LocalQueue, account_of

OLD_SCHEMA = """
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, job_id TEXT,
    dead INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, available_at REAL NOT NULL, owner INTEGER);
CREATE INDEX messages_available ON messages (available_at);
CREATE INDEX messages_job ON messages (job_id);
INSERT INTO messages (body, job_id, available_at) VALUES ('{"job_id": "j1", "object": "users/ann/a.jpg"}', 'j1', 0);
"""


def test_a_queue_file_from_before_opens_and_takes_turns(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    queue = LocalQueue(path, "http://127.0.0.1:9/", "http://127.0.0.1:9/", deliver=False)
    queue.publish([{"job_id": "j1", "object": "users/ann/b.jpg"}, {"job_id": "j2", "object": "users/ben/c.jpg"},
                   {"kind": "fit", "owner": "cat", "name": "m"}])
    assert queue.pending("j1") == 2 and queue.depth() == (4, 0)
    claimed = [queue._claim() for _ in range(4)]
    bodies = [c[1] for c in claimed if c]
    # ann, ben, cat in turn (not ann's two first); the message from before belongs to no account, served in turn too
    assert ["users/ann/b.jpg" in bodies[0], "ben" in bodies[1], "fit" in bodies[2], "users/ann/a.jpg" in bodies[3]] \
        == [True] * 4, bodies
    assert account_of({"object": "users/ann/x/y.jpg"}) == "ann" and account_of({"owner": "ben"}) == "ben"
