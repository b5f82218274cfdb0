"""register and tokens under the real functions-framework, over HTTP, on both store backends."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
import requests

from tests.conftest import REPO, Api, error_of


def test_register_then_balance_three_ways(account_api: Api) -> None:
    user = account_api.register()
    assert user["tokens"] == 5 and user["api_key"].startswith("icf_")
    tokens = account_api.url("tokens", "")
    assert account_api.balance(user["api_key"]) == 5
    basic = requests.get(tokens + "/tokens", auth=(user["username"], user["password"]))
    assert basic.json() == {"username": user["username"], "tokens": 5}
    seed = requests.post(tokens + "/token", json={"username": user["username"], "password": user["password"]})
    assert seed.json()["tokens"] == 5


def test_duplicate_username(account_api: Api) -> None:
    user = account_api.register()
    r = requests.post(account_api.url("register", "/register"),
                      json={"username": user["username"], "password": "another password"})
    assert error_of(r, 409)["code"] == "username_taken"


def test_admin_flag_in_signup_is_ignored(account_api: Api) -> None:
    r = requests.post(account_api.url("register", "/register"),
                      json={"username": "sneaky-admin-" + account_api.backend, "password": "password123",
                            "is_admin": True, "admin": True, "tokens": 999999})
    assert r.status_code == 201 and r.json()["tokens"] == 5
    refill = requests.post(account_api.url("tokens", "/refill"), json={"username": "x", "amount": 5},
                           headers={"Authorization": f"Bearer {r.json()['api_key']}"})
    error_of(refill, 403)


@pytest.mark.parametrize("body, why", [
    ({"username": "ab", "password": "password123"}, "invalid_username"),
    ({"username": "a" * 65, "password": "password123"}, "invalid_username"),
    ({"username": "bob smith", "password": "password123"}, "invalid_username"),
    ({"username": "bób", "password": "password123"}, "invalid_username"),
    ({"username": "bob\x00", "password": "password123"}, "invalid_username"),
    ({"username": "bob\n", "password": "password123"}, "invalid_username"),
    ({"username": "x'; DROP TABLE accounts;--", "password": "password123"}, "invalid_username"),
    ({"username": 12345, "password": "password123"}, "invalid_username"),
    ({"username": ["bob"], "password": "password123"}, "invalid_username"),
    ({"password": "password123"}, "invalid_username"),
    ({"username": "bobby", "password": "short"}, "invalid_password"),
    ({"username": "bobby", "password": 12345678}, "invalid_password"),
    ({"username": "bobby", "password": "é" * 40}, "invalid_password"),
    ({"username": "bobby"}, "invalid_password"),
])
def test_register_rules(account_api: Api, body: dict, why: str) -> None:
    r = requests.post(account_api.url("register", "/register"), json=body)
    assert error_of(r, 400)["code"] == why


@pytest.mark.parametrize("data, content_type, status", [
    (b"", "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\"text\"", "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b"username=bob", "application/x-www-form-urlencoded", 415),
    (b"x" * (10 * 1024 * 1024 + 1), "application/json", 413),
])
def test_register_malformed_bodies(account_api: Api, data: bytes, content_type: str, status: int) -> None:
    r = requests.post(account_api.url("register", "/register"), data=data, headers={"Content-Type": content_type})
    error_of(r, status)


def test_register_wrong_method(account_api: Api) -> None:
    error_of(requests.get(account_api.url("register", "/register")), 405)


def test_chunked_body_is_refused(account_api: Api) -> None:
    def chunks():
        yield b'{"username": "chunky", '
        yield b'"password": "password123"}'
    r = requests.post(account_api.url("register", "/register"), data=chunks(),
                      headers={"Content-Type": "application/json"})
    error_of(r, 411)


@pytest.mark.parametrize("headers, body, code", [
    ({}, None, "unauthorized"),
    ({"Authorization": "Bearer icf_not-a-real-key"}, None, "invalid_api_key"),
    ({"Authorization": "Bearer "}, None, "invalid_api_key"),
    ({"Authorization": "Basic !!!"}, None, "unauthorized"),
    ({"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}, None, "unauthorized"),
    ({"Authorization": "Digest abc"}, None, "unauthorized"),
    ({}, {"username": "nobody-here", "password": "whatever1"}, "invalid_credentials"),
    ({}, {"username": "x' OR '1'='1", "password": "' OR ''='"}, "invalid_credentials"),
    ({}, {"username": None, "password": None}, "unauthorized"),
])
def test_balance_auth_failures(account_api: Api, headers: dict, body: dict | None, code: str) -> None:
    r = requests.post(account_api.url("tokens", "/token"), headers=headers, json=body)
    assert error_of(r, 401)["code"] == code


def test_wrong_password(account_api: Api) -> None:
    user = account_api.register()
    r = requests.get(account_api.url("tokens", "/tokens"), auth=(user["username"], "wrong password"))
    assert error_of(r, 401)["code"] == "invalid_credentials"


def test_rotate_key(account_api: Api) -> None:
    user = account_api.register()
    r = requests.post(account_api.url("register", "/api-key"), auth=(user["username"], user["password"]))
    assert r.status_code == 200, r.text
    new_key = r.json()["api_key"]
    assert new_key != user["api_key"] and account_api.balance(new_key) == 5
    old = requests.get(account_api.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {user['api_key']}"})
    error_of(old, 401)
    by_key = requests.post(account_api.url("register", "/api-key"), headers={"Authorization": f"Bearer {new_key}"})
    error_of(by_key, 401)  # a stolen key cannot mint another one


def test_refill_as_admin_both_forms(account_api: Api) -> None:
    user = account_api.register()
    key = account_api.admin_key()
    r = requests.post(account_api.url("tokens", "/refill"), json={"username": user["username"], "amount": 7},
                      headers={"Authorization": f"Bearer {key}"})
    assert r.json() == {"username": user["username"], "tokens": 12}
    seed = requests.post(account_api.url("tokens", "/refill"),
                         json={"username": "root", "password": "root-password", "user": user["username"],
                               "refill": 3})
    assert seed.json() == {"username": user["username"], "tokens": 15}
    assert account_api.balance(user["api_key"]) == 15


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", None, True, 1_000_001, 10**30, [5], {"n": 5}])
def test_refill_bad_amounts(account_api: Api, amount: object) -> None:
    user = account_api.register()
    r = requests.post(account_api.url("tokens", "/refill"), json={"username": user["username"], "amount": amount},
                      headers={"Authorization": f"Bearer {account_api.admin_key()}"})
    assert error_of(r, 400)["code"] == "invalid_amount"
    assert account_api.balance(user["api_key"]) == 5


def test_refill_unknown_user_and_non_admin(account_api: Api) -> None:
    r = requests.post(account_api.url("tokens", "/refill"), json={"username": "no-such-user", "amount": 5},
                      headers={"Authorization": f"Bearer {account_api.admin_key()}"})
    error_of(r, 404)
    user = account_api.register()
    r = requests.post(account_api.url("tokens", "/refill"), json={"username": user["username"], "amount": 5},
                      headers={"Authorization": f"Bearer {user['api_key']}"})
    error_of(r, 403)
    seed = requests.post(account_api.url("tokens", "/refill"),
                         json={"username": user["username"], "password": user["password"], "user": "root",
                               "refill": 5})
    error_of(seed, 403)
    error_of(requests.post(account_api.url("tokens", "/refill"), json={"username": "x", "amount": 1}), 401)


@pytest.mark.parametrize("module", ["functions/register/main.py", "functions/tokens/main.py"])
def test_no_heavy_imports(module: str) -> None:
    code = (
        "import importlib.util, sys, json\n"
        f"spec = importlib.util.spec_from_file_location('m', {str(REPO / module)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps(sorted(n for n in ('tensorflow', 'keras', 'numpy', 'ai_edge_litert', 'PIL')"
        " if n in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == []


def test_admin_command_creates_and_promotes(tmp_path) -> None:
    env = {"PYTHONPATH": str(REPO), "SQLITE_PATH": str(tmp_path / "a.db"), "BCRYPT_ROUNDS": "4", "PATH": "/usr/bin:/bin"}
    run = lambda *a, stdin="": subprocess.run([sys.executable, "-m", "common.ops.admin", *a], input=stdin,  # noqa: E731
                                              capture_output=True, text=True, env=env, cwd=REPO)
    made = run("create-admin", "boss", "--password-stdin", stdin="a long password\n")
    assert made.returncode == 0 and "boss is an admin" in made.stdout
    missing = run("promote", "ghost")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert run("refill", "boss", "0").returncode == 1
    assert "now has 15 tokens" in run("refill", "boss", "10").stdout


@pytest.mark.parametrize("path, data, content_type, status", [
    ("/refill", b"{not json", "application/json", 400),
    ("/refill", b"[1]", "application/json", 400),
    ("/refill", b"", "application/json", 400),
    ("/refill", b"user=x", "text/plain", 415),
    ("/token", b"[\"alice\"]", "application/json", 400),
    ("/token", b"{bad", "application/json", 400),
])
def test_tokens_malformed_bodies(account_api: Api, path: str, data: bytes, content_type: str, status: int) -> None:
    r = requests.post(account_api.url("tokens", path), data=data, headers={"Content-Type": content_type})
    error_of(r, status)
