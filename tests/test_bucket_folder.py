"""The laptop's bucket folder as users fill it by hand, through HTTP on the local stack: symbolic links lead nowhere
(none crosses from one space into another's or into the models, for any storage primitive), and a folder whose
files vanish while it is listed still lists."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.images import jpeg
from tests.stack import LocalStack
from tests.waiting import wait_until

JPEG = jpeg()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("bucket-folder") / "data", models_dir).start()
    try:
        yield stack
    finally:
        stack.stop()


def space(stack: LocalStack, name: str) -> Path:
    folder = stack.data_dir / "bucket" / "users" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def call(stack: LocalStack, user: dict, method: str, path: str, **kw: object) -> requests.Response:
    return requests.request(method, stack.url + path, headers=user["headers"], timeout=60, **kw)  # type: ignore[arg-type]


def listed(stack: LocalStack, user: dict, prefix: str) -> list[str]:
    r = call(stack, user, "GET", "/files", params={"prefix": prefix})
    assert r.status_code == 200, r.text
    return [f["path"] for f in r.json()["files"]]


def test_links_in_a_space_reach_nothing_outside_it(stack: LocalStack) -> None:
    alice, bob = stack.user("alice", 10), stack.user("bob", 10)
    theirs, mine = space(stack, "alice"), space(stack, "bob")
    (theirs / "all").mkdir()
    (theirs / "all" / "a.jpg").write_bytes(JPEG)
    (theirs / "unmatched").mkdir()
    (mine / "link").symlink_to("../alice")  # a folder of another space
    (mine / "one.jpg").symlink_to("../alice/all/a.jpg")  # a file of another space
    (mine / "models").symlink_to("../../models")  # the models folder
    (mine / "dangling.jpg").symlink_to("../nowhere.jpg")
    (mine / "unmatched").symlink_to("../alice/unmatched")  # where a sort job of bob's would put its outputs
    (mine / "own").mkdir()
    (mine / "own" / "b.jpg").write_bytes(JPEG)  # a regular file dropped on disk works as an upload does

    # list (a dangling link included: the folder still lists)
    assert listed(stack, bob, "") == ["own/b.jpg"]
    for prefix in ("link/", "link/all/", "models/", "unmatched/"):
        assert listed(stack, bob, prefix) == [], prefix
    # read and stat
    for path in ("link/all/a.jpg", "one.jpg", "dangling.jpg"):
        assert call(stack, bob, "GET", f"/files/{path}").status_code == 404, path
    assert call(stack, bob, "GET", "/files/own/b.jpg").content == JPEG
    # write: neither over alice's file nor a new one in her space
    for path in ("link/all/a.jpg", "link/all/new.jpg", "one.jpg"):
        r = call(stack, bob, "PUT", f"/files/{path}", data=JPEG[:100] + JPEG)
        assert r.status_code == 409 and r.json()["error"]["code"] == "path_conflict", (path, r.text)
    assert (theirs / "all" / "a.jpg").read_bytes() == JPEG and not (theirs / "all" / "new.jpg").exists()
    # delete
    for path in ("link/all/a.jpg", "one.jpg"):
        assert call(stack, bob, "DELETE", f"/files/{path}").status_code == 404, path
    assert (theirs / "all" / "a.jpg").is_file()
    # copy: a job over alice's folder sorts nothing, and bob's own job writes no output into her space
    job = call(stack, bob, "POST", "/jobs", json={"classes": ["cat"], "source": "link/all/"})
    assert job.status_code == 202 and job.json()["total"] == 0, job.text
    job = call(stack, bob, "POST", "/jobs", json={"classes": ["cat"], "source": "own/"})
    assert job.status_code == 202, job.text
    stack.wait_job(bob, job.json()["id"])
    assert not list((theirs / "unmatched").iterdir())
    # a training over alice's folder finds no images
    r = call(stack, bob, "POST", "/models", json={"name": "stolen", "source": "link/"})
    assert 400 <= r.status_code < 500, r.text
    assert stack.balance(alice) == 10 and listed(stack, alice, "") == ["all/a.jpg"]


def test_a_folder_lists_while_its_files_are_deleted(stack: LocalStack) -> None:
    carol = stack.user("carol", 5)  # fewer than the folder holds: a job over it is a 402
    folder = space(stack, "carol") / "busy"
    folder.mkdir()
    (folder.parent / "gone.jpg").symlink_to("busy/never.jpg")  # dangling from the start
    statuses: list[int] = []
    for _ in range(6):
        names = [folder / f"{i:04d}.jpg" for i in range(300)]
        for name in names:
            name.write_bytes(b"x")
        done = threading.Event()

        def delete(names: list[Path] = names, done: threading.Event = done) -> None:
            for name in names:
                os.unlink(name)
                time.sleep(0.002)  # spread over the listings that race it
            done.set()

        deleter = threading.Thread(target=delete)
        deleter.start()
        while not done.is_set():
            statuses.append(call(stack, carol, "GET", "/files", params={"prefix": "busy/"}).status_code)
            statuses.append(call(stack, carol, "POST", "/jobs", json={"classes": ["cat"], "source": "busy/"})
                            .status_code)
        deleter.join()
    assert statuses and set(statuses) <= {200, 202, 402}, statuses
    assert listed(stack, carol, "") == []


def test_the_upload_watcher_follows_no_link(stack: LocalStack) -> None:
    secret = space(stack, "dave") / "secret.jpg"
    secret.write_bytes(JPEG)
    inbox, labels = stack.data_dir / "bucket" / "inbox", stack.data_dir / "bucket" / "labels" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "a-link.jpg").symlink_to(secret)  # handled before b-real.jpg in the same round, if at all
    (inbox / "b-real.jpg").write_bytes(JPEG)
    wait_until((labels / "b-real.jpg.json").is_file, 120, "the regular file was never labelled")
    assert not (labels / "a-link.jpg.json").exists()
