"""The web console's sessions over HTTP (issue 18, item 13): signing in to the console gives a key of its own,
revoked at sign-out, and never touches the account's API key that the CLI and scripts use."""

from __future__ import annotations

import requests

from tests.conftest import Api, error_of


def status(api: Api, key: str) -> int:
    return requests.get(api.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {key}"},
                        timeout=30).status_code


def sign_in(api: Api, user: dict) -> dict:
    r = requests.post(api.url("register", "/sessions"), auth=(user["username"], user["password"]), timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def sign_out(api: Api, key: str, session_id: str) -> requests.Response:
    return requests.delete(api.url("register", f"/sessions/{session_id}"),
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_console_sign_ins_leave_the_api_key_working(account_api: Api) -> None:
    user = account_api.register()
    first, second = sign_in(account_api, user), sign_in(account_api, user)
    assert first["key"] != second["key"] and first["id"] != second["id"]
    assert first["username"] == user["username"] and first["name"] == "session" and first["tokens"] == 5
    assert first["key"].startswith(first["prefix"]) and first["expires"] > first["created"]
    assert [status(account_api, k) for k in (user["api_key"], first["key"], second["key"])] == [200, 200, 200]
    r = sign_out(account_api, first["key"], first["id"])
    assert r.status_code == 204, r.text
    assert [status(account_api, k) for k in (user["api_key"], first["key"], second["key"])] == [200, 401, 200]
    assert error_of(sign_out(account_api, second["key"], first["id"]), 404)["code"] == "unknown_session"
    # rotating the API key (the CLI's `login`) leaves the console's session alone, and the other way round
    rotated = requests.post(account_api.url("register", "/api-key"), auth=(user["username"], user["password"]),
                            timeout=30).json()["api_key"]
    assert [status(account_api, k) for k in (user["api_key"], rotated, second["key"])] == [401, 200, 200]
    assert sign_out(account_api, rotated, second["id"]).status_code == 204  # any key of the owner signs out
    assert [status(account_api, k) for k in (rotated, second["key"])] == [200, 401]


def test_sessions_are_the_owners_and_need_the_password(account_api: Api) -> None:
    alice, bob = account_api.register(), account_api.register()
    session = sign_in(account_api, alice)
    assert error_of(sign_out(account_api, bob["api_key"], session["id"]), 404)["code"] == "unknown_session"
    assert status(account_api, session["key"]) == 200  # bob could not revoke alice's session
    by_key = requests.post(account_api.url("register", "/sessions"), headers={"Authorization": f"Bearer "
                                                                           f"{session['key']}"}, timeout=30)
    error_of(by_key, 401)  # a session key cannot open another session
    wrong = requests.post(account_api.url("register", "/sessions"), auth=(alice["username"], "not it"), timeout=30)
    assert error_of(wrong, 401)["code"] == "invalid_credentials"
    error_of(requests.get(account_api.url("register", "/sessions"), timeout=30), 405)
    error_of(requests.delete(account_api.url("register", "/sessions"), timeout=30), 405)
    error_of(requests.delete(account_api.url("register", f"/sessions/{session['id']}"), timeout=30), 401)
    error_of(requests.delete(account_api.url("register", f"/sessions/{session['id']}/x"),
                             headers={"Authorization": f"Bearer {session['key']}"}, timeout=30), 404)
