"""The operator commands against a real local stack: list stuck work, re-drive it to the end, sweep.

Work gets stuck the way it does in life: a stack whose queue cannot reach its worker takes a job and a training
run, then its queue is lost (the stack stopped, the queue's file deleted). A working stack on the same data
finishes neither until `python -m common.ops.admin redrive` publishes what they miss; the tokens come out exact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import animals, photos
from infra.processes import REPO, free_port
from tests.animals import folder
from tests.conftest import configure
from tests.stack import BACKEND_VARIABLES, LocalStack
from tests.waiting import wait_for_status

USER = "ops"


def calm_stack(data: Path, models_dir: Path, worker_url: str = "") -> LocalStack:
    """A stack whose own sweeper stays out of the way; with `worker_url`, one whose queue delivers there."""
    extra = {"WORKER_URL": worker_url, "QUEUE_MAX_ATTEMPTS": "1000"} if worker_url else {}
    return LocalStack(data, models_dir, None, SWEEP_INTERVAL="3600", MODEL_CHUNK_SIZE="8", **extra)


def admin(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in BACKEND_VARIABLES}
    full.update(PYTHONPATH=str(REPO), DATA_DIR=str(data), **env)
    return subprocess.run([sys.executable, "-m", "common.ops.admin", *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=120)


def listed(data: Path) -> dict[str, dict[str, Any]]:
    done = admin(data, "jobs", "--json")
    assert done.returncode == 0, done.stderr
    return {row["id"]: row for row in json.loads(done.stdout)}


def wait_for(url: str, headers: dict[str, str], final: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    return wait_for_status(lambda: requests.get(url, headers=headers, timeout=30).json(), final, timeout)


def stuck_work(tmp_path: Path, models_dir: Path) -> tuple[Path, dict[str, Any], str]:
    """A job and a training run whose messages are lost: (data folder, the user, the job id)."""
    data = tmp_path / "data"
    broken = calm_stack(data, models_dir, f"http://127.0.0.1:{free_port()}/_worker").start()
    try:
        user = broken.user(USER, 40)
        space = data / "bucket" / "users" / USER
        (space / "all").mkdir(parents=True)
        for i in range(3):
            shutil.copy(photos.path("coffee.png"), space / "all" / f"{i}.png")
        (space / "all" / "notes.png").write_bytes(b"not an image")
        images, labels = animals.load()
        for key, png in folder(images, labels, animals.CLASSES[:2], 10, "pets/").items():
            (space / key).parent.mkdir(parents=True, exist_ok=True)
            (space / key).write_bytes(png)
        job = requests.post(broken.url + "/jobs", headers=user["headers"], json={"classes": ["food"]}, timeout=30)
        assert job.status_code == 202, job.text
        model = requests.post(broken.url + "/models", headers=user["headers"], timeout=30,
                              json={"name": "pets", "source": "pets/"})
        assert model.status_code == 202, model.text
        assert broken.balance(user) == 40 - 4 - 20
    finally:
        broken.stop()
    for suffix in ("", "-wal", "-shm"):  # the queue is lost with every message in it
        (data / f"queue.db{suffix}").unlink(missing_ok=True)
    return data, user, job.json()["id"]


def test_list_and_redrive_stuck_work(tmp_path: Path, models_dir: Path) -> None:
    data, user, job_id = stuck_work(tmp_path, models_dir)
    stack = calm_stack(data, models_dir).start()
    try:
        time.sleep(1)
        rows = listed(data)
        assert rows[job_id]["kind"] == "job" and rows[job_id]["owner"] == USER and rows[job_id]["queued"] == 0
        assert (rows[job_id]["status"], rows[job_id]["done"], rows[job_id]["total"]) == ("queued", 0, 4)
        assert rows[job_id]["age_seconds"] >= 1
        run = rows[f"{USER}/pets"]
        assert (run["kind"], run["status"], run["done"], run["total"]) == ("training", "queued", 0, 20)
        table = admin(data, "jobs").stdout.splitlines()
        assert table[0].split() == ["KIND", "ID", "OWNER", "STATUS", "PROGRESS", "AGE", "IDLE"]
        assert any(job_id in line and "0/4 (0%)" in line for line in table)

        done = admin(data, "redrive", job_id)
        assert done.returncode == 0 and "4 message(s)" in done.stdout, done.stderr
        done = admin(data, "redrive", f"{USER}/pets")
        assert done.returncode == 0 and "3 message(s)" in done.stdout, done.stderr  # 20 images, chunks of 8

        job = wait_for(f"{stack.url}/jobs/{job_id}", user["headers"], ("done", "failed"))
        assert job["status"] == "done" and job["matched"] == {"food": 3} and job["failed"] == 1, job
        model = wait_for(f"{stack.url}/models/pets", user["headers"], ("ready", "failed"))
        assert model["status"] == "ready", model
        assert stack.balance(user) == 40 - 3 - 20  # the unreadable image refunded, nothing charged twice

        again = admin(data, "redrive", job_id)
        assert again.returncode == 1 and "already" in again.stderr
        assert admin(data, "redrive", "nosuchjob").returncode == 1
        assert admin(data, "redrive", f"{USER}/nosuch").returncode == 1
        assert listed(data) == {}
        assert "finished" in admin(data, "jobs").stdout
    finally:
        stack.stop()


def test_sweep_closes_a_stalled_job(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    stack = calm_stack(data, models_dir).start()
    try:
        user = stack.user(USER, 10)
        configure(monkeypatch, STORE_BACKEND="sqlite", DATA_DIR=str(data), SQLITE_PATH=str(data / "accounts.db"))
        from common.adapters.backends import get_store
        from common.records.records import Job

        job = Job(id=uuid.uuid4().hex, owner=USER, classes=["food"], source="all/", min_score=0.3, total=2,
                  created=time.time() - 5, model="efficientnet_lite0")
        get_store().create_job(job, 2, f"{USER}:job:{job.id}")  # charged, and nothing published
        assert stack.balance(user) == 8 and listed(data)[job.id]["status"] == "queued"

        swept = admin(data, "sweep", JOB_STALL_SECONDS="1")
        assert swept.returncode == 0, swept.stderr
        assert json.loads(swept.stdout.splitlines()[-1])["jobs_closed"] == [job.id]
        closed = requests.get(f"{stack.url}/jobs/{job.id}", headers=user["headers"], timeout=30).json()
        assert closed["status"] == "failed" and closed["failed"] == 2
        assert stack.balance(user) == 10 and listed(data) == {}
    finally:
        stack.stop()
