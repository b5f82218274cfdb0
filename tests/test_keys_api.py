"""Named API keys and password change over HTTP, under the real functions-framework, on both store backends."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import Api, bearer, error_of

T = 30  # seconds: every call's timeout


def keys_url(api: Api, path: str = "") -> str:
    return api.url("register", "/keys" + path)


def make_key(api: Api, key: str, name: str, scope: str = "all") -> dict:
    r = requests.post(keys_url(api), json={"name": name, "scope": scope}, headers={"Authorization": f"Bearer {key}"},
                      timeout=T)
    assert r.status_code == 201, r.text
    return dict(r.json())


def listed(api: Api, key: str) -> list[dict]:
    r = requests.get(keys_url(api), headers={"Authorization": f"Bearer {key}"}, timeout=T)
    assert r.status_code == 200, r.text
    return list(r.json()["keys"])


def status_with(api: Api, key: str) -> int:
    return requests.get(api.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {key}"},
                        timeout=T).status_code


def test_keys_are_made_listed_and_revoked_one_at_a_time(account_api: Api) -> None:
    user = account_api.register()
    ci = make_key(account_api, user["api_key"], "ci runner", "all")
    phone = make_key(account_api, user["api_key"], "phone-app.v2", "classify")
    assert set(ci) == {"id", "name", "prefix", "scope", "created", "key"} and ci["key"].startswith(ci["prefix"])
    assert (phone["name"], phone["scope"]) == ("phone-app.v2", "classify")
    keys = listed(account_api, ci["key"])
    assert [k["name"] for k in keys] == ["default", "ci runner", "phone-app.v2"]
    assert all(set(k) == {"id", "name", "prefix", "scope", "created", "last_used"} for k in keys)
    assert not any(ci["key"] in str(k) or phone["key"] in str(k) for k in keys), "a listing never shows a secret"
    r = requests.delete(keys_url(account_api, f"/{ci['id']}"), headers=bearer(user), timeout=T)
    assert r.status_code == 204 and not r.content
    assert error_of(requests.get(keys_url(account_api), headers={"Authorization": f"Bearer {ci['key']}"},
                                 timeout=T), 401)["code"] == "invalid_api_key"  # at once
    assert status_with(account_api, phone["key"]) == 200 and status_with(account_api, user["api_key"]) == 200
    assert [k["name"] for k in listed(account_api, user["api_key"])] == ["default", "phone-app.v2"]
    again = requests.delete(keys_url(account_api, f"/{ci['id']}"), headers=bearer(user), timeout=T)
    assert error_of(again, 404)["code"] == "unknown_key"


def test_another_accounts_key_id_is_a_404(account_api: Api) -> None:
    alice, mallory = account_api.register(), account_api.register()
    key = make_key(account_api, alice["api_key"], "alice-laptop")
    r = requests.delete(keys_url(account_api, f"/{key['id']}"), headers=bearer(mallory), timeout=T)
    assert error_of(r, 404)["code"] == "unknown_key"
    default_id = listed(account_api, alice["api_key"])[0]["id"]
    error_of(requests.delete(keys_url(account_api, f"/{default_id}"), headers=bearer(mallory), timeout=T), 404)
    assert status_with(account_api, key["key"]) == 200 and status_with(account_api, alice["api_key"]) == 200
    assert [k["name"] for k in listed(account_api, mallory["api_key"])] == ["default"]


def test_a_classify_key_is_refused_everything_but_classify_balance_and_jobs(account_api: Api) -> None:
    user = account_api.register()
    narrow = make_key(account_api, user["api_key"], "narrow", "classify")["key"]
    auth = {"Authorization": f"Bearer {narrow}"}
    assert status_with(account_api, narrow) == 200
    assert requests.post(account_api.url("tokens", "/token"), headers=auth, timeout=T).status_code == 200
    refused = [
        requests.get(keys_url(account_api), headers=auth, timeout=T),
        requests.post(keys_url(account_api), json={"name": "wider", "scope": "all"}, headers=auth, timeout=T),
        requests.delete(keys_url(account_api, "/0123456789abcdef"), headers=auth, timeout=T),
        requests.post(account_api.url("register", "/password"), headers=auth, timeout=T,
                      json={"old_password": user["password"], "new_password": "a new password"}),
        requests.delete(account_api.url("register", "/account"), json={"password": user["password"]}, headers=auth,
                        timeout=T),
        requests.delete(account_api.url("register", "/sessions/0123456789abcdef"), headers=auth, timeout=T),
        requests.post(account_api.url("tokens", "/refill"), json={"username": user["username"], "amount": 1},
                      headers=auth, timeout=T),
        requests.get(account_api.url("tokens", "/usage"), headers=auth, timeout=T),
        requests.get(account_api.url("tokens", "/usage.csv"), headers=auth, timeout=T),
        requests.get(account_api.url("tokens", "/webhooks/secret"), headers=auth, timeout=T),
        requests.post(account_api.url("tokens", "/webhooks/secret"), headers=auth, timeout=T),
        requests.get(account_api.url("tokens", "/webhooks/deliveries"), headers=auth, timeout=T),
        requests.get(account_api.url("tokens", "/admin/accounts"), headers=auth, timeout=T),
    ]
    for r in refused:
        error = error_of(r, 403)
        assert error["code"] == "insufficient_scope" and "'all'" in error["message"], r.request.url
    assert status_with(account_api, user["api_key"]) == 200  # nothing was changed by the refusals
    assert [k["name"] for k in listed(account_api, user["api_key"])] == ["default", "narrow"]


def test_last_used_is_noted_coarsely(account_api: Api) -> None:
    user = account_api.register()
    key = make_key(account_api, user["api_key"], "counted")
    assert {k["name"]: k["last_used"] for k in listed(account_api, user["api_key"])}["counted"] is None
    first = {k["name"]: k["last_used"] for k in listed(account_api, key["key"])}["counted"]
    assert isinstance(first, float) and first >= key["created"]
    for _ in range(3):
        assert status_with(account_api, key["key"]) == 200
    assert {k["name"]: k["last_used"] for k in listed(account_api, key["key"])}["counted"] == first  # no write each


def test_keys_per_account_are_limited(account_api: Api) -> None:
    user = account_api.register()
    made = [make_key(account_api, user["api_key"], f"k{i}") for i in range(20)]
    r = requests.post(keys_url(account_api), json={"name": "one too many"}, headers=bearer(user), timeout=T)
    error = error_of(r, 409)
    assert error["code"] == "too_many_keys" and "DELETE /keys/" in error["message"]
    assert requests.delete(keys_url(account_api, f"/{made[0]['id']}"), headers=bearer(user),
                           timeout=T).status_code == 204
    assert make_key(account_api, user["api_key"], "room again")["scope"] == "all"  # the default scope


@pytest.mark.parametrize("body, code", [
    ({}, "invalid_key_name"),
    ({"name": ""}, "invalid_key_name"),
    ({"name": "x" * 65}, "invalid_key_name"),
    ({"name": "bad\nname"}, "invalid_key_name"),
    ({"name": "<script>"}, "invalid_key_name"),
    ({"name": 12}, "invalid_key_name"),
    ({"name": "ok", "scope": "admin"}, "invalid_scope"),
    ({"name": "ok", "scope": ["all"]}, "invalid_scope"),
])
def test_key_bodies_are_checked(account_api: Api, body: dict, code: str) -> None:
    user = account_api.register()
    r = requests.post(keys_url(account_api), json=body, headers=bearer(user), timeout=T)
    assert error_of(r, 400)["code"] == code


@pytest.mark.parametrize("route, method", [("/keys", "POST"), ("/password", "POST"), ("/account", "DELETE")])
@pytest.mark.parametrize("data, content_type, status", [
    (b"", "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"{}", "application/json", 400),
    (b"name=x", "application/x-www-form-urlencoded", 415),
    (b"x" * (10 * 1024 * 1024 + 1), "application/json", 413),
])
def test_malformed_bodies_are_4xx(account_api: Api, route: str, method: str, data: bytes, content_type: str,
                                  status: int) -> None:
    user = account_api.register()
    r = requests.request(method, account_api.url("register", route), data=data, timeout=T,
                         headers={**bearer(user), "Content-Type": content_type})
    error_of(r, status)
    assert status_with(account_api, user["api_key"]) == 200  # the account is still there


def test_routes_need_authentication_and_their_methods(account_api: Api) -> None:
    for method, route in (("GET", "/keys"), ("POST", "/keys"), ("DELETE", "/keys/x"), ("POST", "/password"),
                          ("DELETE", "/account")):
        error_of(requests.request(method, account_api.url("register", route), json={}, timeout=T), 401)
    user = account_api.register()
    for method, route in (("PUT", "/keys"), ("GET", "/keys/x"), ("GET", "/password"), ("POST", "/account")):
        error_of(requests.request(method, account_api.url("register", route), headers=bearer(user), timeout=T), 405)
    error_of(requests.get(keys_url(account_api, "/a/b"), headers=bearer(user), timeout=T), 404)


def change_password(api: Api, auth: dict, old: str, new: str, **extra: bool) -> requests.Response:
    return requests.post(api.url("register", "/password"), headers=auth, timeout=T,
                         json={"old_password": old, "new_password": new, **extra})


def test_password_change_keeps_keys_unless_asked(account_api: Api) -> None:
    user = account_api.register()
    other = make_key(account_api, user["api_key"], "other")["key"]
    wrong = change_password(account_api, bearer(user), "not my password", "a new password")
    assert error_of(wrong, 403)["code"] == "wrong_password"
    error_of(change_password(account_api, bearer(user), user["password"], "short"), 400)
    error_of(change_password(account_api, bearer(user), user["password"], "a" * 73), 400)
    r = change_password(account_api, bearer(user), user["password"], "a new password")
    assert r.status_code == 204, r.text
    tokens = account_api.url("tokens", "/tokens")
    error_of(requests.get(tokens, auth=(user["username"], user["password"]), timeout=T), 401)
    assert requests.get(tokens, auth=(user["username"], "a new password"), timeout=T).status_code == 200
    assert status_with(account_api, other) == 200 and status_with(account_api, user["api_key"]) == 200
    r = change_password(account_api, {"Authorization": f"Bearer {other}"}, "a new password", "a third password",
                        revoke_keys=True)
    assert r.status_code == 204, r.text
    assert status_with(account_api, user["api_key"]) == 401, "the other keys stop"
    assert status_with(account_api, other) == 200, "the key that asked keeps working"
    assert [k["name"] for k in listed(account_api, other)] == ["other"]
    basic = change_password(account_api, {}, "a third password", "a fourth password", revoke_keys=True)
    error_of(basic, 401)  # the body holds no `username`/`password` pair: credentials are needed
    r = requests.post(account_api.url("register", "/password"), auth=(user["username"], "a third password"),
                      json={"old_password": "a third password", "new_password": "a fourth password",
                            "revoke_keys": True}, timeout=T)
    assert r.status_code == 204 and status_with(account_api, other) == 401  # signed in by password: every key
