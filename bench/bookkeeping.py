"""What a sort job's worker does per image besides the model, measured alone: the jobs section's floor.

    python -m bench.bookkeeping DATA_DIR COUNT

Sorts COUNT photos one after another with `common.jobs.sorting.handle_image`, the worker's own code, on SQLite
and the bucket folder under DATA_DIR, with the stub model (bench/stub_model.py: no decoding, no inference):
the signature and job checks, the image's two commits and its output's copy. Prints the CPU milliseconds per
image as one JSON line. With the two callers' CPU per image, it bounds what a job can reach against them when
every core is busy and nothing waits: their CPU / (their CPU + this).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

NAMES = ["coffee.png", "chelsea.png", "grace_hopper.jpg", "camera.png", "astronaut.png"]


def main(data: Path, count: int) -> float:
    os.environ.update(STORE_BACKEND="sqlite", SQLITE_PATH=str(data / "bookkeeping.db"), STORAGE_BACKEND="local",
                      BUCKET_DIR=str(data / "bucket"), DATA_DIR=str(data), INTERNAL_SECRET=os.urandom(16).hex())
    from bench import stub_model
    from common.adapters.backends import get_storage, get_store
    from common.bootstrap import bootstrap
    from common.core import signing
    from common.jobs import sorting
    from common.records.records import Job
    from infra import photos

    stub_model.install()
    store, storage = get_store(), get_storage()
    store.create_account("bench", "hash", "key-bench", count + 1)
    keys = [f"users/bench/all/{i:03d}-{NAMES[i % 5]}" for i in range(count + 1)]
    for i, key in enumerate(keys):
        storage.write(key, photos.data(NAMES[i % 5]))
    job = Job(id="j1", owner="bench", classes=["food", "cat", "clothing"], source="all/", min_score=0.1,
              total=len(keys), created=time.time())
    store.create_job(job, len(keys), "bench:job:j1", objects=keys)
    deps, messages = bootstrap(), [signing.sign({"job_id": "j1", "object": key}) for key in keys]
    sorting.handle_image(messages[0], deps)  # the first opens the connections and imports what sorting needs
    started = time.process_time()
    for message in messages[1:]:
        sorting.handle_image(message, deps)
    used = time.process_time() - started
    finished = store.get_job("j1")
    if finished is None or finished.status != "done" or finished.processed != len(keys):
        raise RuntimeError(f"the bookkeeping job did not sort its images: {finished}")
    return 1000 * used / count


if __name__ == "__main__":
    print(json.dumps({"cpu_ms_per_image": main(Path(sys.argv[1]), int(sys.argv[2]))}))
