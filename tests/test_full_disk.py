"""A full disk, for real: the local stack's data folder on a small tmpfs, filled up mid-job, then freed.

While the disk is full every request that writes answers 507 with the error envelope, /healthz reports the disk and
then the queue that does not drain; once space is freed the job in flight completes, with no restart and no image
failed (a worker's full disk spends none of a message's delivery attempts).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.images import coffee, encode
from tests.stack import LocalStack
from tests.waiting import wait_until

IMAGES = 200
FEW = {"classes": ["food"], "source": "few/"}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs as the data folder and needs root: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system refuses another byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 16, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as refused, open(folder / "probe", "wb") as probe:
        probe.write(b"\0" * 4096)
        probe.flush()
        os.fsync(probe.fileno())
    assert refused.value.errno == errno.ENOSPC
    return filler


def truncate_wals(folder: Path) -> None:
    """Empty the SQLite write-ahead logs, so that the next commits must grow them (a full disk refuses that)."""
    for name in ("accounts.db", "queue.db"):
        with contextlib.closing(sqlite3.connect(folder / name, timeout=30)) as db:

            def truncated(wal: sqlite3.Connection = db) -> bool:
                return bool(wal.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0)

            wait_until(truncated, 30, f"{name} stays busy", interval=0.05)


def health(stack: LocalStack) -> dict:
    return dict(requests.get(stack.url + "/healthz", timeout=30).json())


def wait_for(what: str, check: object, timeout: float = 120) -> None:
    wait_until(check, timeout, f"not {what}", interval=0.2)  # type: ignore[arg-type]


def is_full_disk(r: requests.Response) -> bool:
    return r.status_code == 507 and r.json()["error"]["code"] == "insufficient_storage" and "Retry-After" in r.headers


def test_a_full_disk_is_507_and_processing_resumes_once_space_is_freed(tmpfs: Path, models_dir: Path) -> None:
    stack = LocalStack(tmpfs, models_dir, DISK_MIN_FREE_BYTES=str(256 * 1024), QUEUE_LEASE="10",
                       QUEUE_STALLED_AFTER="2").start()
    try:
        user = stack.user("dana", IMAGES + 10)
        source = tmpfs / "bucket" / "users" / "dana" / "all"
        source.mkdir(parents=True)
        small = encode(coffee().resize((48, 48), Image.Resampling.BILINEAR), "JPEG")
        for i in range(IMAGES):
            (source / f"{i:03d}.jpg").write_bytes(small)
        (source.parent / "few").mkdir()
        for i in range(2):
            (source.parent / "few" / f"{i}.jpg").write_bytes(small)
        job = requests.post(stack.url + "/jobs", headers=user["headers"], timeout=60,
                            json={"classes": ["food"], "source": "all/"}).json()
        wait_for("started", lambda: stack.job(user, job["id"])["processed"] >= 1)
        truncate_wals(tmpfs)
        filler = fill(tmpfs)
        assert stack.job(user, job["id"])["processed"] < IMAGES, "the job ended before the disk was full"

        # every request that writes: the envelope's 507, nothing charged
        put = requests.put(stack.url + "/files/new/one.jpg", headers=user["headers"], data=small, timeout=60)
        assert is_full_disk(put), put.text
        again = requests.post(stack.url + "/jobs", headers=user["headers"], json=FEW, timeout=60)
        assert is_full_disk(again), again.text
        signup = requests.post(stack.url + "/register", json={"username": "erin", "password": "a long password"},
                               timeout=60)
        assert is_full_disk(signup), signup.text
        listing = requests.get(stack.url + "/files", params={"prefix": "new/"}, headers=user["headers"], timeout=60)
        assert listing.status_code == 200 and listing.json()["files"] == []
        # /healthz: the disk at once, the queue once nothing has been delivered for a lease and a bit
        report = health(stack)
        assert report["status"] == "failing" and not report["checks"]["disk"]["ok"], report
        wait_for("reported as not draining", lambda: "not draining" in health(stack)["checks"]["queue"].get("error", ""))
        assert stack.job(user, job["id"])["processed"] < IMAGES

        filler.unlink()  # space is freed; nothing restarts
        status = stack.wait_job(user, job["id"], timeout=240)
        assert status["status"] == "done" and status["processed"] == IMAGES and status["failed"] == 0, status
        wait_for("healthy again", lambda: health(stack)["status"] == "ok")
        put = requests.put(stack.url + "/files/new/one.jpg", headers=user["headers"], data=small, timeout=60)
        assert put.status_code == 201, put.text
        again = requests.post(stack.url + "/jobs", headers=user["headers"], json=FEW, timeout=60)
        assert again.status_code == 202, again.text
        assert stack.wait_job(user, again.json()["id"])["processed"] == 2
        assert stack.balance(user) == 10 - 2
    finally:
        stack.stop()
    assert "Exception in thread" not in stack.log.read_text()
