"""The operator's routes (`/admin/...` on the tokens function) over HTTP on the real functions, and the records
under them on every store adapter: search, suspend and resume, refills and the audit log, totals, stuck work."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.conftest import Api, bearer, error_of

TIMEOUT = 30


def admin_get(api: Api, path: str, key: str, **params: Any) -> requests.Response:
    return requests.get(api.url("tokens", path), params=params, headers={"Authorization": f"Bearer {key}"},
                        timeout=TIMEOUT)


def admin_post(api: Api, path: str, key: str, **body: Any) -> requests.Response:
    return requests.post(api.url("tokens", path), json=body or None, headers={"Authorization": f"Bearer {key}"},
                         timeout=TIMEOUT)


def test_the_admin_routes_do_not_exist_for_anyone_else(account_api: Api) -> None:
    user = account_api.register()
    for path in ("/admin/accounts", "/admin/totals", "/admin/audit", "/admin/jobs"):
        refused = error_of(admin_get(account_api, path, user["api_key"]), 404)
        assert refused["code"] == "not_found" and "admin" not in refused["message"].split("'")[0]
        error_of(requests.get(account_api.url("tokens", path), timeout=TIMEOUT), 401)
    error_of(admin_post(account_api, f"/admin/accounts/{user['username']}/suspend", user["api_key"]), 404)
    assert account_api.balance(user["api_key"]) == 5  # and nothing happened


def test_search_suspend_resume_and_the_audit_log(account_api: Api) -> None:
    admin = account_api.admin_key()
    tag = uuid.uuid4().hex[:6]
    users = [account_api.register(f"srch{tag}{i}") for i in range(3)]
    other = account_api.register(f"other{tag}")
    account_api.balance(users[1]["api_key"])  # an authenticated request: the account's activity is noted
    found = admin_get(account_api, "/admin/accounts", admin, q=f"srch{tag}").json()["accounts"]
    assert [a["username"] for a in found] == [u["username"] for u in users]
    assert all(a["tokens"] == 5 and a["suspended"] is False for a in found)
    assert [bool(a["last_active"]) for a in found] == [False, True, False]
    error_of(admin_get(account_api, "/admin/accounts", admin, q="bad prefix!"), 400)

    victim = users[0]
    r = admin_post(account_api, f"/admin/accounts/{victim['username']}/suspend", admin)
    assert r.status_code == 204, r.text
    # its key, its password and a new session are all refused, with a code and what to do
    for refused in (requests.get(account_api.url("tokens", "/tokens"), headers=bearer(victim), timeout=TIMEOUT),
                    requests.get(account_api.url("tokens", "/tokens"), auth=(victim["username"], victim["password"]),
                                 timeout=TIMEOUT),
                    requests.post(account_api.url("register", "/sessions"),
                                  auth=(victim["username"], victim["password"]), timeout=TIMEOUT)):
        error = error_of(refused, 403)
        assert error["code"] == "account_suspended" and "operator" in error["message"]
    assert account_api.balance(other["api_key"]) == 5  # the others are untouched
    suspended = admin_get(account_api, "/admin/accounts", admin, q=victim["username"]).json()["accounts"]
    assert suspended[0]["suspended"] is True
    assert admin_post(account_api, f"/admin/accounts/{victim['username']}/resume", admin).status_code == 204
    assert account_api.balance(victim["api_key"]) == 5

    refill = requests.post(account_api.url("tokens", "/refill"), json={"username": other["username"], "amount": 7},
                           headers={"Authorization": f"Bearer {admin}"}, timeout=TIMEOUT)
    assert refill.json()["tokens"] == 12
    error_of(admin_post(account_api, f"/admin/accounts/nobody{tag}/suspend", admin), 404)
    error_of(admin_post(account_api, f"/admin/accounts/{'x' * 3000}/suspend", admin), 404)  # never a store key
    error_of(admin_post(account_api, "/admin/accounts/root/suspend", admin), 409)  # an admin is never locked out

    events = admin_get(account_api, "/admin/audit", admin).json()["events"]
    mine = [(e["admin"], e["action"], e["target"]) for e in events if tag in e["target"]]
    assert mine[:3] == [("root", "refill", other["username"]), ("root", "resume", victim["username"]),
                        ("root", "suspend", victim["username"])]  # newest first
    assert all(abs(e["at"] - time.time()) < 600 for e in events)


def test_totals_count_accounts_and_todays_spending(account_api: Api) -> None:
    admin = account_api.admin_key()
    before = admin_get(account_api, "/admin/totals", admin).json()
    account_api.register()
    after = admin_get(account_api, "/admin/totals", admin).json()
    assert after["accounts"] == before["accounts"] + 1
    assert after["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert after["tokens_spent"] >= 0 and after["images_classified"] >= 0


def test_stuck_and_failed_work_and_a_redrive_of_nothing(account_api: Api) -> None:
    admin = account_api.admin_key()
    for state in ("stuck", "failed"):
        r = admin_get(account_api, "/admin/jobs", admin, state=state)
        assert r.status_code == 200 and isinstance(r.json()["jobs"], list)
    error_of(admin_get(account_api, "/admin/jobs", admin, state="lost"), 400)
    error_of(admin_get(account_api, "/admin/jobs", admin, idle="soon"), 400)
    error_of(admin_post(account_api, "/admin/jobs/nosuchjob/redrive", admin), 404)
    error_of(admin_post(account_api, "/admin/jobs/someone/nomodel/redrive", admin), 404)


# -- the records, on every adapter -----------------------------------------------------------------------


def test_prefix_search_audit_order_and_totals_on_every_store(store: Any) -> None:
    from common.records.ledger import charge
    from common.records.totals import day_of

    for name in ("bob", "alice2", "alice1", "alicf", "al"):
        store.create_account(name, "x", f"hash-{name}", 5)
    assert [a["username"] for a in store.search_accounts("alice")] == ["alice1", "alice2"]
    assert [a["username"] for a in store.search_accounts("", 2)] == ["al", "alice1"]
    store.set_suspended("root", "bob", True)
    assert store.get_account("bob").suspended and store.search_accounts("bob")[0]["suspended"]
    store.set_suspended("root", "bob", False)
    store.docs.transact(lambda tx: charge(tx, "al", 3, "spend-1"))
    store.docs.transact(lambda tx: charge(tx, "alice1", 2, "spend-2", kind="training"))
    assert store.totals(day_of(time.time())) == {"accounts": 5, "tokens_spent": 5, "images_classified": 3}
    assert [(e["action"], e["target"]) for e in store.audit_events()] == [("resume", "bob"), ("suspend", "bob")]
    store.note_activity("al", 0.0)
    assert store.get_account("al").last_active > 0
