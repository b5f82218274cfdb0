"""Scoped keys and account deletion on the whole local stack: a `classify` key classifies and reads its jobs and
is refused the rest; a deleted account's keys stop with the 202, its name stays taken, and its data goes on the
sweep, also when the stack is killed (kill -9) before any of it went."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from infra import photos
from tests.conftest import error_of
from tests.localstack_server import bucket_folder
from tests.stack import LocalStack
from tests.waiting import wait_until

T = 60  # seconds: every call's timeout


def files_of(data: Path, username: str) -> int:
    return sum(path.is_file() for path in (data / "bucket" / "users" / username).rglob("*"))


def test_a_classify_key_classifies_and_reads_jobs_and_nothing_else(tmp_path: Path, models_dir: Path) -> None:
    stack = LocalStack(tmp_path / "data", models_dir).start()
    try:
        user = stack.user("scoped", 20)
        url, full = stack.url, user["headers"]
        r = requests.post(url + "/keys", json={"name": "kiosk", "scope": "classify"}, headers=full, timeout=T)
        narrow = {"Authorization": f"Bearer {r.json()['key']}"}
        png = photos.data("coffee.png")
        assert requests.put(url + "/files/in/c.png", data=png, headers=full, timeout=T).status_code == 201
        job = requests.post(url + "/jobs", json={"classes": ["food"], "source": "in/"}, headers=full, timeout=T).json()
        ok = [requests.post(url + "/classify", files={"file": ("c.png", png)}, headers=narrow, timeout=T),
              requests.post(url + "/predict", files={"file": ("c.png", png)}, headers=narrow, timeout=T),
              requests.get(url + "/tokens", headers=narrow, timeout=T),
              requests.get(f"{url}/jobs/{job['id']}", headers=narrow, timeout=T),
              requests.get(f"{url}/classification-job/{job['id']}", headers=narrow, timeout=T)]
        assert [r.status_code for r in ok] == [200] * 5, [r.text for r in ok]
        refused = [requests.put(url + "/files/in/d.png", data=png, headers=narrow, timeout=T),
                   requests.get(url + "/files", headers=narrow, timeout=T),
                   requests.get(url + "/files/in/c.png", headers=narrow, timeout=T),
                   requests.delete(url + "/files/in/c.png", headers=narrow, timeout=T),
                   requests.post(url + "/jobs", json={"classes": ["food"], "source": "in/"}, headers=narrow, timeout=T),
                   requests.delete(f"{url}/jobs/{job['id']}", headers=narrow, timeout=T),
                   requests.get(url + "/models", headers=narrow, timeout=T),
                   requests.post(url + "/models", json={"name": "m", "source": "in/"}, headers=narrow, timeout=T),
                   requests.get(url + "/keys", headers=narrow, timeout=T)]
        for r in refused:
            assert error_of(r, 403)["code"] == "insufficient_scope", (r.request.method, r.request.url)
        assert requests.get(url + "/files/in/c.png", headers=full, timeout=T).content == png  # nothing was changed
    finally:
        stack.stop()


def test_deletion_stops_keys_at_once_and_a_kill9_before_the_purge_is_finished_by_the_sweep(
        tmp_path: Path, models_dir: Path) -> None:
    data = tmp_path / "data"
    stack = LocalStack(data, models_dir, SWEEP_INTERVAL="3600").start()  # no sweep before the kill
    try:
        leaver, stayer = stack.user("leaver", 20), stack.user("stayer", 20)
        url, png = stack.url, photos.data("coffee.png")
        for user in (leaver, stayer):
            assert requests.put(url + "/files/in/c.png", data=png, headers=user["headers"], timeout=T).status_code == 201
        named = requests.post(url + "/keys", json={"name": "ci"}, headers=leaver["headers"], timeout=T).json()["key"]
        job = requests.post(url + "/jobs", json={"classes": ["food"], "source": "in/"}, headers=leaver["headers"],
                            timeout=T).json()
        assert stack.wait_job(leaver, job["id"])["matched"] == {"food": 1}
        shutil.copy(photos.path("coffee.png"), bucket_folder(data, "in/", "leaver") / "more.png")
        wrong = requests.delete(url + "/account", json={"password": "not it"}, headers=leaver["headers"], timeout=T)
        assert error_of(wrong, 403)["code"] == "wrong_password"
        r = requests.delete(url + "/account", json={"password": "a long password"}, headers=leaver["headers"],
                            timeout=T)
        assert r.status_code == 202 and r.json() == {"username": "leaver", "status": "deleting"}
        for auth in (leaver["headers"], {"Authorization": f"Bearer {named}"}):
            assert error_of(requests.get(url + "/tokens", headers=auth, timeout=T), 401)["code"] == "invalid_api_key"
        error_of(requests.get(url + "/tokens", auth=("leaver", "a long password"), timeout=T), 401)
        taken = requests.post(url + "/register", json={"username": "leaver", "password": "another one"}, timeout=T)
        assert error_of(taken, 409)["code"] == "username_taken"
        assert files_of(data, "leaver") == 3  # not purged yet: the sweep does it
        stack.kill()
        stack = LocalStack(data, models_dir, port=stack.port, SWEEP_INTERVAL="1").start()
        wait_until(lambda: files_of(data, "leaver") == 0, 120,
                   "the sweep after the restart did not purge the deleted account's files")
        wait_until(lambda: requests.post(url + "/register", json={"username": "leaver", "password": "x" * 10},
                                         timeout=T).status_code == 409, 30)  # held back for the cooling-off
        assert requests.get(url + "/files/in/c.png", headers=stayer["headers"], timeout=T).content == png
        assert stack.balance(stayer) == 20
        error_of(requests.get(f"{url}/jobs/{job['id']}", headers=stayer["headers"], timeout=T), 404)
    finally:
        stack.stop()
