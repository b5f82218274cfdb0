"""The embedded queue's file from before fair delivery still opens, and its messages are delivered in turn; first
deliveries of images go in batches, and a failed batch is retried one message at a time."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common.adapters.queue.local import LocalQueue, account_of
from tests.waiting import wait_until

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


class Worker:
    """A worker over HTTP that records each event's messages and fails every event holding a `bad` one; its
    dead-letter handler (`/dead`) takes anything."""

    def __init__(self) -> None:
        self.events: list[list[dict]] = []
        self.lock = threading.Lock()
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                messages = data["batch"] if isinstance(data, dict) and "batch" in data else [data]
                with recorded.lock:
                    recorded.events.append(messages)
                bad = self.path != "/dead" and any(m.get("bad") for m in messages)
                self.send_response(500 if bad else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_first_deliveries_go_in_batches_and_a_failed_batch_is_retried_one_by_one(tmp_path: Path) -> None:
    """Images share a delivery (one lease, one POST, one delete); a batch that fails does not hold its good
    images back: each is retried alone, and only the bad one ends as a dead letter."""
    worker = Worker()
    queue = LocalQueue(tmp_path / "queue.db", worker.url, worker.url + "dead", workers=2, batch=4, max_attempts=2,
                       deliver=False)
    try:
        images = [{"job_id": "j1", "object": f"users/ann/all/{i:02d}.jpg"} for i in range(11)]
        bad = {"job_id": "j1", "object": "users/ann/all/bad.jpg", "bad": True}
        queue.publish([*images, bad, {"kind": "fit", "owner": "ann", "name": "m", "version": "v"}])
        queue.deliver = True
        queue.start()
        wait_until(lambda: queue.depth() == (0, 0), 60, lambda: (queue.depth(), worker.events))
    finally:
        queue.stop()
        worker.server.shutdown()
    events = [[str(m.get("object", m.get("kind"))) for m in e] for e in worker.events]
    assert max(map(len, events)) == 4 and len(events) < 13, events  # batches of up to 4
    assert ["fit"] in events and all(len(e) == 1 for e in events if "fit" in e), events  # a training step alone
    delivered = [m for e, raw in zip(events, worker.events, strict=True) if not any(x.get("bad") for x in raw)
                 for m in e]
    assert sorted(m for m in delivered if m != "fit") == sorted(i["object"] for i in images), events  # each once
    with_bad = [e for e in events if "users/ann/all/bad.jpg" in e]
    assert len(with_bad) == 3 and with_bad[1:] == [["users/ann/all/bad.jpg"]] * 2, events  # alone after its batch
