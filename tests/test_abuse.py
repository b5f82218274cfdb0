"""Abuse limits against a real function: password guessing is throttled per account, sign-ups per address."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Api, make_api


@pytest.fixture(scope="module", params=["sqlite", "firestore"])
def strict_limits(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, str(request.param), LOGIN_FREE_FAILURES="5", SIGNUPS_PER_ADDRESS="3",
                   SIGNUPS_PER_MINUTE="1000", BCRYPT_CONCURRENCY="1")
    yield api
    api.stop()


def test_password_guessing_is_throttled_but_keys_are_not(strict_limits: Api) -> None:
    user = strict_limits.register()
    tokens = strict_limits.url("tokens", "/tokens")
    statuses = [requests.get(tokens, auth=(user["username"], f"guess-{i}")).status_code for i in range(5)]
    assert statuses == [401] * 5
    locked = requests.get(tokens, auth=(user["username"], "guess-again"))
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    assert int(locked.headers["Retry-After"]) >= 1
    # locked for passwords, the right one included; the API key is unaffected
    assert requests.get(tokens, auth=(user["username"], user["password"])).status_code == 429
    assert requests.get(tokens, headers={"Authorization": f"Bearer {user['api_key']}"}).status_code == 200
    time.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert requests.get(tokens, auth=(user["username"], user["password"])).status_code == 200
    # a success cleared the count: five more wrong ones before the next lock
    assert [requests.get(tokens, auth=(user["username"], "x" * 9)).status_code for _ in range(5)] == [401] * 5


def test_unknown_accounts_are_throttled_alike(strict_limits: Api) -> None:
    tokens = strict_limits.url("tokens", "/tokens")
    statuses = [requests.get(tokens, auth=("nobody-at-all", "password1")).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_signups_are_limited_per_address(strict_limits: Api) -> None:
    url = strict_limits.url("register", "/register")
    replies = [requests.post(url, json={"username": f"signup-{i}-{time.time_ns()}", "password": "password123"})
               for i in range(8)]  # the limit is 3 a minute: a window boundary can let one more batch through
    refused = [r for r in replies if r.status_code == 429]
    assert refused and sum(r.status_code == 201 for r in replies) <= 6
    assert refused[0].json()["error"]["code"] == "rate_limited" and int(refused[0].headers["Retry-After"]) >= 1
