"""A wrong-password flood for random names against a real function server (issue 18, items 3 and 5).

The bcrypt cost is raised so that a hash takes real time, and the budgets are the smallest: one hash at a
time, none waiting. Guesses for names that do not exist must not take that one slot.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Api, make_api
from tests.waiting import wait_until

FLOODERS = 12


@pytest.fixture(scope="module")
def slow_hashes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, "sqlite", BCRYPT_ROUNDS="10", BCRYPT_CONCURRENCY="1", BCRYPT_QUEUE="0",
                   LOGIN_FREE_FAILURES="5", SIGNUPS_PER_ADDRESS="3", SIGNUPS_PER_MINUTE="1000", TRUSTED_PROXIES="1")
    yield api
    api.stop()


def flood(url: str, stop: threading.Event, seen: Counter[int]) -> None:
    with requests.Session() as http:
        while not stop.is_set():
            name = f"nobody{uuid.uuid4().hex[:10]}"
            try:
                seen[http.get(url, auth=(name, "wrong password"), timeout=30).status_code] += 1
            except requests.RequestException:
                seen[0] += 1


def test_a_flood_for_unknown_names_leaves_password_sign_in_working(slow_hashes: Api) -> None:
    user = slow_hashes.register()
    tokens, sessions = slow_hashes.url("tokens", "/tokens"), slow_hashes.url("register", "/sessions")
    stop, seen = threading.Event(), Counter[int]()
    threads = [threading.Thread(target=flood, args=(tokens, stop, seen)) for _ in range(FLOODERS)]
    for t in threads:
        t.start()
    try:
        # the flood is under way and answered as wrong passwords
        wait_until(lambda: seen[401] >= 20, 60, lambda: seen, interval=0.05)
        replies = [requests.get(tokens, auth=(user["username"], user["password"]), timeout=30) for _ in range(8)]
        replies += [requests.post(sessions, auth=(user["username"], user["password"]), timeout=30) for _ in range(4)]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert [r.status_code for r in replies] == [200] * 8 + [201] * 4, [r.text for r in replies if r.status_code >= 300]
    assert set(seen) <= {401, 503}, seen  # random names: wrong, or the flood's own budget is full; never a 500


def timed(url: str, auth: tuple[str, str]) -> float:
    started = time.monotonic()
    r = requests.get(url, auth=auth, timeout=30)
    assert r.status_code == 401, r.text
    return time.monotonic() - started


def test_an_unknown_name_fails_as_slowly_as_a_wrong_password(slow_hashes: Api) -> None:
    user = slow_hashes.register()
    tokens = slow_hashes.url("tokens", "/tokens")
    known = [timed(tokens, (user["username"], f"guess number {i}")) for i in range(4)]  # below the lock
    unknown = [timed(tokens, (f"ghost{uuid.uuid4().hex[:8]}", "guess number 0")) for _ in range(4)]
    assert statistics.median(unknown) >= 0.5 * statistics.median(known), (known, unknown)


def test_sign_ups_refused_for_want_of_a_hash_slot_are_not_counted(slow_hashes: Api) -> None:
    """Eight sign-ups at once from one address with one hash slot and no queue: most are refused with 503. Those
    were never attempted, so the address may still sign up its full three."""
    url = slow_hashes.url("register", "/register")
    if time.time() % 60 > 40:  # the three must fall in one minute's window
        time.sleep(61 - time.time() % 60)
    headers = {"X-Forwarded-For": "192.0.2.77"}
    statuses: list[int] = []

    def sign_up() -> None:
        body = {"username": f"s{uuid.uuid4().hex[:10]}", "password": "password123"}
        statuses.append(requests.post(url, json=body, headers=headers, timeout=30).status_code)

    burst = [threading.Thread(target=sign_up) for _ in range(8)]
    for t in burst:
        t.start()
    for t in burst:
        t.join(60)
    assert 503 in statuses and set(statuses) <= {201, 503}, statuses
    for _ in range(10):
        if statuses.count(201) == 3 or 429 in statuses:
            break
        sign_up()
    assert statuses.count(201) == 3 and 429 not in statuses, statuses
