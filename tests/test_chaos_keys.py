"""kill -9 of the local stack with Idempotency-Key requests in flight: every key costs once, whatever the moment.

The restart releases the reservations of the requests that died with the
stack (it holds the data folder, so their process is dead): none stays held
for its lease, and each key's retry either replays its reply or runs once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import requests

from infra import photos
from tests.stack import LocalStack
from tests.waiting import wait_until


def open_reservations(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM docs WHERE kind = 'spends' "
                                "AND json_extract(body, '$.expires') IS NOT NULL").fetchone()[0])


def classify(stack: LocalStack, user: dict, key: str, session: requests.Session) -> requests.Response:
    """/classify, or the seed route /predict (the same metered path), with an Idempotency-Key."""
    route = "/predict" if key.endswith(("1", "3", "5", "7", "9")) else "/classify"
    return session.post(stack.url + route, headers={**user["headers"], "Idempotency-Key": key}, timeout=60,
                        files={"file": ("c.png", photos.data("coffee.png"))})


def test_keyed_requests_in_flight_at_kill9_cost_once(tmp_path: Path, models_dir: Path) -> None:
    stack = LocalStack(tmp_path / "data", models_dir).start()  # the default lease: the restart must not wait for it
    granted = 1000
    try:
        user = stack.user("keys", granted)
        answers: dict[str, int | None] = {}  # key -> status, None when the reply was lost in the kill
        lock, stop = threading.Lock(), threading.Event()

        def client(n: int) -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                key, i = f"c{n}-{i}", i + 1
                try:
                    status: int | None = classify(stack, user, key, session).status_code
                except requests.RequestException:
                    status = None
                with lock:
                    answers[key] = status

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        with contextlib.suppress(AssertionError):  # kill mid-burst: after 30 answers, or wherever it is after 60 s
            wait_until(lambda: sum(s == 200 for s in list(answers.values())) >= 30, 60, interval=0.05)
        stack.kill()
        stop.set()
        for t in threads:
            t.join()
        assert set(answers.values()) <= {200, 503, None}, answers  # 503: a busy database, nothing charged
        lost = [k for k, s in answers.items() if s is None]
        assert lost, "no request was in flight at the kill"
        stack.start()
        assert open_reservations(tmp_path / "data" / "accounts.db") == 0  # released at start, not after the lease
        session = requests.Session()
        for key in answers:  # every key again: a replay, or its first complete run (never 409 in progress)
            for _ in range(20):
                r = classify(stack, user, key, session)
                if r.status_code != 503:
                    break
                time.sleep(0.5)
            assert r.status_code == 200, (key, answers[key], r.text)
        assert stack.balance(user) == granted - len(answers), (len(answers), len(lost))
    finally:
        stack.stop()
