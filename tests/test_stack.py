"""The local stack (`nox -s serve`'s entry point) as a user meets it: one port, a whole journey, clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from infra import photos
from infra.processes import free_port
from tests.conftest import REPO
from tests.waiting import wait_for_status, wait_until


def test_user_journey_and_clean_stop(tmp_path: Path, models_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MODELS_DIR": str(models_dir), "BCRYPT_ROUNDS": "4",
           "ADMIN_USERNAME": "boss", "ADMIN_PASSWORD": "boss-password"}
    for name in ("STORE_BACKEND", "STORAGE_BACKEND", "QUEUE_BACKEND", "WORKER_URL", "SQLITE_PATH", "BUCKET_DIR"):
        env.pop(name, None)
    log = tmp_path / "stack.log"  # a file, not a pipe: a pipe nobody reads would block the stack once full
    with log.open("w") as out:
        stack = subprocess.Popen([sys.executable, "-m", "infra.localstack", "--port", str(port), "--data-dir",
                                  str(tmp_path / "data")], cwd=REPO, env=env, start_new_session=True,
                                 stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert stack.poll() is None and time.monotonic() < deadline, "the stack did not start"
            time.sleep(0.2)
        user = requests.post(base + "/register", json={"username": "alice", "password": "a long password"}).json()
        auth = {"Authorization": f"Bearer {user['api_key']}"}
        r = requests.post(base + "/classify", headers=auth, files={"file": ("c.png", photos.data("coffee.png"))})
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "espresso"
        assert requests.post(base + "/token", headers=auth).json()["tokens"] == 4
        admin = requests.post(base + "/api-key", auth=("boss", "boss-password")).json()["api_key"]
        assert requests.post(base + "/refill", json={"username": "alice", "amount": 10},
                             headers={"Authorization": f"Bearer {admin}"}).json()["tokens"] == 14
        bucket = tmp_path / "data" / "bucket"
        space = bucket / "users" / "alice"
        for i, name in enumerate(["coffee.png", "chelsea.png", "grace_hopper.jpg", "coffee.png"]):
            (space / "all").mkdir(parents=True, exist_ok=True)
            shutil.copy(photos.path(name), space / "all" / f"{i}-{name}")
        job = requests.post(base + "/jobs", headers=auth, json={"classes": ["food", "cat", "clothing"],
                                                                "source": "all/"}).json()
        status = wait_for_status(lambda: requests.get(f"{base}/classification-job/{job['id']}", headers=auth).json(),
                                 ("done",), 120, interval=0.2)
        assert status["matched"] == {"food": 2, "cat": 1, "clothing": 1}
        assert (space / "food" / "all" / "0-coffee.png").exists() and (space / "cat" / "all" / "1-chelsea.png").exists()
        (bucket / "inbox").mkdir(exist_ok=True)
        shutil.copy(photos.path("camera.png"), bucket / "inbox" / "camera.png")
        labels = bucket / "labels" / "inbox" / "camera.png.json"
        wait_until(labels.exists, 60, "no labels from the upload watcher", interval=0.2)
        assert '"tripod"' in labels.read_text()
        assert requests.get(base + "/nowhere").status_code == 404
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            raise
    output = log.read_text()
    assert stack.returncode == 0, output
    assert "serving on" in output and "create-admin" in output
    try:
        os.killpg(stack.pid, 0)
        raise AssertionError("processes of the stack are still running")
    except ProcessLookupError:
        pass


def test_ctrl_c_stops_a_stack_started_from_a_background_job(tmp_path: Path, models_dir: Path) -> None:
    """A shell's background job (`nox -s serve &`, a CI step) hands its children an ignored SIGINT; Python then
    installs no KeyboardInterrupt handler, and Ctrl-C (what `LocalStack.stop` sends) did nothing."""
    from tests.stack import LocalStack

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child, as from `cmd &`
    try:
        stack = LocalStack(tmp_path / "data", models_dir).start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert stack.stop(60) == 0
    finally:
        stack.kill()
