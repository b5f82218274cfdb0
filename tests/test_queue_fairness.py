"""Fair delivery on the embedded queue: one account's backlog does not stall another's small job.

Measured by order of completion, not by the clock: a big job of one account is queued first, then a small job of
another; the small one must be done before the big one is half done.
"""

from __future__ import annotations

from pathlib import Path

import requests
from PIL import Image

from tests.images import coffee, encode
from tests.stack import LocalStack

BIG, SMALL = 120, 5


def test_a_small_job_of_one_account_passes_a_big_job_of_another(tmp_path: Path, models_dir: Path) -> None:
    stack = LocalStack(tmp_path / "data", models_dir).start()
    try:
        image = encode(coffee().resize((64, 64), Image.Resampling.BILINEAR), "JPEG")
        users = {}
        for name, count in (("ann", BIG), ("ben", SMALL)):
            users[name] = stack.user(name, count)
            folder = tmp_path / "data" / "bucket" / "users" / name / "all"
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i:03d}.jpg").write_bytes(image)
        jobs = {}
        for name in ("ann", "ben"):  # the big job's messages are all queued before the small job's
            r = requests.post(stack.url + "/jobs", headers=users[name]["headers"], timeout=60,
                              json={"classes": ["food"], "source": "all/"})
            assert r.status_code == 202, r.text
            jobs[name] = r.json()["id"]
        small = stack.wait_job(users["ben"], jobs["ben"])
        big = stack.job(users["ann"], jobs["ann"])  # read after the small job finished: at least what it was then
        assert small["status"] == "done" and small["processed"] == SMALL, small
        assert big["processed"] < BIG // 2, big
        assert stack.wait_job(users["ann"], jobs["ann"])["processed"] == BIG
    finally:
        stack.stop()
