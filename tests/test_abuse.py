"""Abuse limits against a real function: password guessing is throttled per account and client address,
sign-ups per address with a global backstop. TRUSTED_PROXIES=1 as in the cloud: the address is the last
X-Forwarded-For entry (the one Google's front end appends), or the peer when there is none."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Api, make_api


@pytest.fixture(scope="module", params=["sqlite", "firestore"])
def strict_limits(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, str(request.param), LOGIN_FREE_FAILURES="5", SIGNUPS_PER_ADDRESS="3",
                   SIGNUPS_PER_MINUTE="1000", BCRYPT_CONCURRENCY="1", TRUSTED_PROXIES="1")
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


def sign_up(api: Api, address: str) -> requests.Response:
    body = {"username": f"u{uuid.uuid4().hex[:10]}", "password": "correct horse"}
    return requests.post(api.url("register", "/register"), json=body, headers={"X-Forwarded-For": address},
                         timeout=30)


def test_a_guesser_elsewhere_cannot_lock_the_owner_out(strict_limits: Api) -> None:
    """Failures lock (name, client address): the guesser's address stays locked however long it keeps
    guessing, and whatever it writes into X-Forwarded-For itself; the owner signs in from their own address."""
    created = sign_up(strict_limits, "203.0.113.9")
    assert created.status_code == 201, created.text
    name, tokens = created.json()["username"], strict_limits.url("tokens", "/tokens")

    def attempt(address: str, password: str) -> requests.Response:
        return requests.get(tokens, auth=(name, password), headers={"X-Forwarded-For": address}, timeout=30)

    assert [attempt("198.51.100.7", f"guess-{i}").status_code for i in range(5)] == [401] * 5
    locked = attempt("198.51.100.7", "guess-again")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    assert attempt("203.0.113.9", "correct horse").status_code == 200  # the owner, elsewhere
    assert attempt("203.0.113.9, 198.51.100.7", "guess-spoofed").status_code == 429  # a forged first entry
    assert attempt("198.51.100.7", "correct horse").status_code == 429  # the guesser's address stays locked
    time.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert attempt("198.51.100.7", "guess-later").status_code == 401  # one more guess after the lock...
    relocked = attempt("198.51.100.7", "guess-later-2")  # ...renews it, longer
    assert relocked.status_code == 429 and int(relocked.headers["Retry-After"]) >= int(locked.headers["Retry-After"])
    assert attempt("203.0.113.9", "correct horse").status_code == 200


@pytest.fixture(scope="module", params=["sqlite", "firestore"])
def signup_limits(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, str(request.param), SIGNUPS_PER_ADDRESS="3", SIGNUPS_PER_MINUTE="4",
                   TRUSTED_PROXIES="1")
    yield api
    api.stop()


def test_a_few_addresses_cannot_use_up_the_global_sign_up_limit(signup_limits: Api) -> None:
    """Three a minute per address, and the global backstop counts addresses (four a minute), not sign-ups:
    four addresses each sign up their full three; only a fifth address in the same minute is refused."""
    signup_limits.url("register")  # the server is up before the minute is chosen
    if time.time() % 60 > 40:  # every sign-up below must fall in one minute's window
        time.sleep(61 - time.time() % 60)
    addresses = [f"192.0.2.{i}" for i in range(1, 5)]
    statuses = {a: [sign_up(signup_limits, a).status_code for _ in range(4)] for a in addresses}
    assert statuses == {a: [201, 201, 201, 429] for a in addresses}
    refused = sign_up(signup_limits, "192.0.2.5")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
