"""Recovery after kill -9: a 200-image sort job killed mid-way, the stack restarted on the same data.

Reports the time from the restart command to the job's `done`, the messages in flight when the stack died
(each is delivered again: the redeliveries it took), and the same job's time uninterrupted as its baseline.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.report import table
from infra import photos
from infra.stack_process import LocalStack

PHOTOS = ("coffee.png", "chelsea.png", "camera.png", "grace_hopper.jpg")
IMAGES = 200


def fill(space: Path) -> None:
    (space / "all").mkdir(parents=True)
    for i in range(IMAGES):
        name = PHOTOS[i % len(PHOTOS)]
        shutil.copy(photos.path(name), space / "all" / f"{i:03d}-{name}")


def in_flight(queue_db: Path) -> int:
    with sqlite3.connect(f"file:{queue_db}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM messages WHERE owner IS NOT NULL").fetchone()[0])


def start_job(stack: LocalStack, name: str, data: Path) -> tuple[dict, str]:
    import requests

    user = stack.user(name, IMAGES + 10)
    fill(data / "bucket" / "users" / name)
    job = requests.post(stack.url + "/jobs", headers=user["headers"], json={"classes": ["food", "cat"],
                                                                             "source": "all/"}, timeout=60).json()
    return user, job["id"]


def run(tmp: Path, models_dir: str) -> dict[str, Any]:
    data = tmp / "data"
    stack = LocalStack(data, Path(models_dir), SIGNUPS_PER_ADDRESS="1000").start()
    try:  # the baseline: the same job, never interrupted
        user, job_id = start_job(stack, "calm", data)
        start = time.perf_counter()
        stack.wait_job(user, job_id, 300)
        baseline = time.perf_counter() - start
        user, job_id = start_job(stack, "chaos", data)
        while stack.job(user, job_id)["processed"] < IMAGES // 4:
            time.sleep(0.01)
        flying = in_flight(data / "queue.db")
        processed_at_kill = stack.job(user, job_id)["processed"]
        stack.kill()
        restarted = time.perf_counter()
        stack.start()
        up = time.perf_counter() - restarted
        final = stack.wait_job(user, job_id, 300)
        recovery = time.perf_counter() - restarted
        exact = stack.balance(user) == 10 + final["failed"]
    finally:
        stack.stop()
    table(f"recovery: a {IMAGES}-image job killed with SIGKILL at {processed_at_kill} processed, then restarted", [
        ("figure", "value", "baseline (same job, uninterrupted)"),
        ("restart -> stack answering (s)", f"{up:.2f}", ""),
        ("restart -> job done (s)", f"{recovery:.2f}", f"{baseline:.2f} for the whole job"),
        ("messages in flight at the kill (delivered again)", str(flying), "0"),
        ("job outcome", f"{final['status']}, {final['processed']}/{final['total']}, tokens exact: {exact}", ""),
    ])
    return {"restart_to_ready_s": up, "restart_to_done_s": recovery, "redeliveries": flying,
            "processed_at_kill": processed_at_kill, "baseline_job_s": baseline, "status": final["status"],
            "tokens_exact": exact}
