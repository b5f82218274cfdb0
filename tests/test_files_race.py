"""Racing writes to a space: whatever the interleaving, the usage equals what is stored, and the quota holds.

Uploads and deletes of one path and of different paths, at once, against the
real `files_api` function on SQLite with the bucket folder and on the
Firestore emulator with fake-gcs-server; and a sort job's output meeting an
upload of its path, in process.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.adapters.backends import get_storage, get_store
from common.bootstrap import bootstrap
from common.files import service as files
from common.jobs import sorting
from common.records.records import Account, ImageOutcome, Job
from tests.conftest import Api, bearer, configure, make_api, new_bucket

QUOTA = 1_000_000
BIG, SMALL = 300_000, 1_000


def png(size: int, fill: int) -> bytes:
    """Bytes recognised as a PNG by their signature (nothing is decoded on upload)."""
    return b"\x89PNG\r\n\x1a\n" + bytes([fill]) * (size - 8)


@pytest.fixture(scope="module", params=[("sqlite", "local"), ("firestore", "gcs")], ids=["sqlite", "firestore"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store, storage = request.param
    tmp = tmp_path_factory.mktemp(f"race-{store}")
    api = make_api(request, tmp_path_factory, store, SPACE_MAX_BYTES=str(QUOTA), SPACE_MAX_FILES="1000",
                   **new_bucket(storage, request, tmp))
    yield api
    api.stop()


def usage(api: Api, username: str) -> tuple[int, int]:
    """The usage the store keeps for an account (read as the function reads it)."""
    from common.records.store import Store

    if api.backend == "firestore":
        from common.adapters.store.firestore import FirestoreDocuments

        store = Store(FirestoreDocuments(api.env["GOOGLE_CLOUD_PROJECT"]))
    else:
        from common.adapters.store.sqlite import SqliteDocuments

        store = Store(SqliteDocuments(api.env["SQLITE_PATH"]))
    try:
        return store.usage(username)
    finally:
        store.close()


def stored(api: Api, user: dict) -> tuple[int, int]:
    """(bytes, files) the space actually holds, from its listing."""
    r = requests.get(api.url("files_api", "/files"), params={"limit": "1000"}, headers=bearer(user), timeout=60)
    assert r.status_code == 200 and r.json()["next"] is None, r.text
    return sum(f["size"] for f in r.json()["files"]), len(r.json()["files"])


def race(api: Api, user: dict, paths: list[str], rounds: int, threads: int = 12) -> Counter[str]:
    """`threads` clients, each putting big and small files and deleting, on `paths`; the statuses seen."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client(n: int) -> None:
        rng, session = random.Random(n), requests.Session()
        for i in range(rounds):
            path = paths[rng.randrange(len(paths))]
            target = api.url("files_api", "/files/" + path)
            if rng.random() < 0.15:
                r = session.delete(target, headers=bearer(user), timeout=60)
            else:
                r = session.put(target, data=png(BIG if rng.random() < 0.5 else SMALL + n, n + i % 200),
                                headers=bearer(user), timeout=60)
            code = r.json()["error"]["code"] if r.status_code >= 400 else ""
            with lock:
                seen[f"{r.request.method} {r.status_code} {code}".strip()] += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return seen


def test_racing_writes_of_one_path_keep_usage_exact(api: Api) -> None:
    user = api.register()
    seen = race(api, user, ["same.png"], rounds=15)
    assert not [s for s in seen if " 5" in s], seen  # no 5xx
    assert usage(api, user["username"]) == stored(api, user), seen


def test_racing_writes_of_many_paths_never_pass_the_quota(api: Api) -> None:
    user = api.register()
    seen = race(api, user, [f"p{i}.png" for i in range(5)], rounds=12)
    assert not [s for s in seen if " 5" in s], seen
    assert seen["PUT 403 quota_exceeded"] > 0, seen  # five big files would not fit
    total = stored(api, user)
    assert usage(api, user["username"]) == total and total[0] <= QUOTA, seen
    for i in range(5):  # and the books still hold: room freed is room to write
        requests.delete(api.url("files_api", f"/files/p{i}.png"), headers=bearer(user), timeout=60)
    assert usage(api, user["username"]) == (0, 0) == stored(api, user)
    r = requests.put(api.url("files_api", "/files/p0.png"), data=png(BIG, 1), headers=bearer(user), timeout=60)
    assert r.status_code == 201, r.text


def test_a_sort_output_and_an_upload_of_its_path_count_what_is_stored(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's output recorded (its room reserved), then the owner uploads a file at that path before the copy:
    whichever file the path ends with, the usage counts it once."""
    configure(monkeypatch, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "a.db"), STORE_BACKEND="sqlite",
              STORAGE_BACKEND="local", BUCKET_DIR=str(tmp_path / "bucket"), INTERNAL_SECRET="s" * 32)
    store, source, output = get_store(), "users/ann/all/a.png", "users/ann/cat/all/a.png"
    store.create_account("ann", "hash", "key-ann", 5)
    job = store.create_job(Job(id="j1", owner="ann", classes=["cat"], source="all/", min_score=0.1, total=1,
                               created=time.time()), 1, "ann:job:j1")
    files.put(Account("ann", "hash", 5), "all/a.png", png(100, 1), bootstrap())
    store.record_image_once("j1", ImageOutcome(source, "cat", output, usage=(100, 1)), files.sizer(get_storage()))
    files.put(Account("ann", "hash", 4), "cat/all/a.png", png(5000, 2), bootstrap())
    sorting._place(job, source, output, bootstrap())  # the worker's copy, after the upload
    there = get_storage().stat(output)
    assert there is not None and store.usage("ann") == (100 + there.size, 2)
