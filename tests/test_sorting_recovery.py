"""The worker's recovery paths between recording an image and copying it, on SQLite and the bucket folder.

The worker records an image's class before it copies the image (so a cancelled job gets no file); these
are the states a crash, a deleted source or a dead letter can leave between the two, set up through the
store and then handed to the worker as its queue would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from common.adapters.backends import get_storage, get_store
from common.bootstrap import bootstrap
from common.core import signing
from common.files import service as files
from common.jobs import sorting
from common.jobs.service import describe
from common.records.records import Account, ImageOutcome, Job
from tests.conftest import configure

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 92  # 100 bytes; no image is decoded here
SOURCE, OUTPUT = "users/ann/all/a.png", "users/ann/cat/a.png"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    """A job of one image that the worker classified as `cat` and recorded, then crashed before copying."""
    configure(monkeypatch, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "a.db"), STORE_BACKEND="sqlite",
              STORAGE_BACKEND="local", BUCKET_DIR=str(tmp_path / "bucket"), INTERNAL_SECRET="s" * 32)
    store = get_store()
    store.create_account("ann", "hash", "key-ann", 5)
    job = store.create_job(Job(id="j1", owner="ann", classes=["cat"], source="all/", min_score=0.1, total=1,
                               created=time.time()), 1, "ann:job:j1")
    get_storage().write(SOURCE, PNG)
    store.record_image_once("j1", ImageOutcome(SOURCE, "cat", OUTPUT, usage=(len(PNG), 1)))
    return job


def state() -> tuple[dict, int, tuple[int, int], bool]:
    store = get_store()
    job = store.get_job("j1")
    assert job is not None
    counts = {"matched": job.matched, "failed": job.failed, "status": job.status}
    tokens = store.get_account("ann").tokens  # type: ignore[union-attr]
    return counts, tokens, store.usage("ann"), Path(get_storage().path(OUTPUT)).exists()  # type: ignore[attr-defined]


MESSAGE = {"job_id": "j1", "object": SOURCE}


def test_a_redelivery_finishes_the_copy_without_classifying_again(job: Job) -> None:
    assert state()[0]["status"] == "running"  # every image recorded, its output not in place: not done yet
    assert not sorting.handle_image(signing.sign(MESSAGE), bootstrap())  # no model is loaded: the record is used
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (100, 1), True)
    assert get_store().image_record("j1", SOURCE).written  # type: ignore[union-attr]
    files.delete(Account("ann", "hash", 4), "cat/a.png", bootstrap())  # the owner deletes the output later: still the job's
    sorting.handle_image(signing.sign(MESSAGE), bootstrap())
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (0, 0), False)


def test_a_source_deleted_before_the_copy_is_charged_and_not_written(job: Job) -> None:
    """The answer was given (the job's counts showed `cat`): deleting the source must not make it free."""
    get_storage().delete(SOURCE)
    sorting.handle_image(signing.sign(MESSAGE), bootstrap())
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (0, 0), False)
    sorting.handle_dead_letter(signing.sign(MESSAGE), bootstrap())  # and a dead letter after that changes nothing
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (0, 0), False)
    assert get_store().get_job("j1").not_written == 1  # type: ignore[union-attr]


def test_a_file_put_in_the_way_is_kept_and_the_image_charged(job: Job) -> None:
    """A different file put at the output's place after the job began: never replaced; the image stays charged
    (before: a path_conflict refunded it, and an overwrite lost the user's file)."""
    theirs = PNG[:-1] + b"\x01"
    files.put(Account("ann", "hash", 4), "cat/a.png", theirs, bootstrap())  # the user's own file, counted once
    sorting.handle_image(signing.sign(MESSAGE), bootstrap())
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (100, 1), True)
    assert get_storage().read(OUTPUT, 100) == theirs
    record = get_store().image_record("j1", SOURCE)
    assert record is not None and not record.awaiting_copy and "different file" in str(record.detail)
    assert describe(get_store().get_job("j1"))["not_written"] == 1  # type: ignore[arg-type]


def test_a_folder_in_the_way_is_kept_and_the_image_charged(job: Job) -> None:
    get_storage().write(OUTPUT + "/inside.png", PNG)
    sorting.handle_image(signing.sign(MESSAGE), bootstrap())
    assert state()[:2] == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4)
    assert get_storage().read(OUTPUT + "/inside.png", 200) == PNG


def test_the_same_bytes_in_place_are_a_finished_copy(job: Job) -> None:
    """A crash after the copy and before it was noted: the redelivery finds its own bytes and keeps them."""
    get_storage().write(OUTPUT, PNG)
    sorting.handle_image(signing.sign(MESSAGE), bootstrap())
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (100, 1), True)


def test_outputs_keep_the_path_in_the_space() -> None:
    assert sorting.output_key("ann", "cat", "users/ann/day1/photo.jpg") == "users/ann/cat/day1/photo.jpg"
    assert sorting.output_key("ann", "cat", "users/ann/day2/photo.jpg") == "users/ann/cat/day2/photo.jpg"


def test_a_dead_letter_makes_the_copy_when_it_can(job: Job) -> None:
    assert not sorting.handle_dead_letter(signing.sign(MESSAGE), bootstrap())
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (100, 1), True)


def test_a_copy_that_lands_after_its_image_was_settled_is_removed(job: Job) -> None:
    get_store().keep_unwritten("j1", SOURCE, "an attempt found the source gone", files.sizer(get_storage()))
    sorting._place(job, SOURCE, OUTPUT, bootstrap())  # the slow attempt that outlived its lease finishes its copy
    assert state() == ({"matched": {"cat": 1}, "failed": 0, "status": "done"}, 4, (0, 0), False)


def test_a_redrive_resends_an_image_awaiting_its_copy(job: Job) -> None:
    from common.ops import operations

    assert operations.redrive_job("j1", bootstrap())["published"] == 1  # recorded, so not re-listed; its copy is what is missing
    assert state()[0]["status"] == "running"


def test_a_redrive_of_a_sharded_job_sends_no_more_images_than_it_charged(job: Job) -> None:
    """Its images awaiting their copy count as recorded, not as missing: the files added to the source since
    the job began are re-driven only up to its total (before: up to it less the images settled)."""
    from common.ops import operations

    store = get_store()
    names = [f"users/ann/all/s{i}.png" for i in range(3)]
    for name in names:
        get_storage().write(name, PNG)
    store.create_job(Job(id="j3", owner="ann", classes=["cat"], source="all/", min_score=0.1, total=2,
                         created=time.time()), 2, "ann:job:j3", names[:2])
    store.record_image_once("j3", ImageOutcome(names[0], "cat", "users/ann/cat/s0.png", usage=(len(PNG), 1)))
    # s0 awaits its copy, and one more image is missing (s1, or the added s2), besides j1's own images
    assert operations.redrive_job("j3", bootstrap())["published"] == 2


def test_a_batch_sorts_every_image_and_fails_after_all_were_tried(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded queue's batch: each message handled as if alone (a nested batch is dropped), and a transient
    failure of one is raised only once the others are done, so the queue retries it and the rest change nothing."""
    from common.jobs import worker

    seen: list[str] = []

    def handle_image(message: dict, deps: object) -> bool:
        seen.append(message["object"])
        if message["object"] == "b":
            raise ConnectionError("the store did not answer")
        return True

    monkeypatch.setattr(sorting, "handle_image", handle_image)
    batch = [{"job_id": "j1", "object": key} for key in "abcd"]
    with pytest.raises(ConnectionError):
        worker.handle({"batch": [*batch, {"batch": batch}]}, bootstrap())
    assert sorted(seen) == list("abcd")  # a failure does not stop the others; the nested batch is not opened
    assert worker.handle({"batch": batch[2:]}, bootstrap())
    assert not worker.handle({"batch": batch * 17}, bootstrap()) and len(seen) == 6  # too long: not ours, dropped


def test_a_sharded_job_cancelled_between_record_and_copy_refunds_the_image_and_keeps_no_file(job: Job) -> None:
    """A sharded job's image counts on its shard once settled: cancelled after its record and before its copy,
    it was refunded by the cancel, so the copy the worker then makes is not the job's: removed, uncounted, once."""
    store, deps = get_store(), bootstrap()
    source, output = "users/ann/all/b.png", "users/ann/cat/b.png"
    get_storage().write(source, PNG)
    before = store.usage("ann")  # j1's output, reserved
    store.create_job(Job(id="j2", owner="ann", classes=["cat"], source="all/", min_score=0.1, total=2,
                         created=time.time()), 2, "ann:job:j2", [source, SOURCE])
    assert store.get_account("ann").tokens == 2  # type: ignore[union-attr]  # 5, less j1's image and j2's two
    store.record_image_once("j2", ImageOutcome(source, "cat", output, usage=(len(PNG), 1)), files.sizer(deps.storage))
    assert store.usage("ann") == (before[0] + 100, before[1] + 1)  # its output reserved in the space
    assert store.finish_job("j2", "cancelled").processed == 0
    assert store.get_account("ann").tokens == 4  # type: ignore[union-attr]  # both of j2's images refunded
    message = signing.sign({"job_id": "j2", "object": source})
    for handle in (sorting.handle_image, sorting.handle_image, sorting.handle_dead_letter):  # then redeliveries
        assert not handle(message, deps)
        assert store.get_account("ann").tokens == 4  # type: ignore[union-attr]
        assert not Path(get_storage().path(output)).exists()  # type: ignore[attr-defined]
        assert store.usage("ann") == before
        record = store.image_record("j2", source)
        assert record is not None and not record.awaiting_copy and "job ended" in str(record.detail)
        cancelled = store.get_job("j2")
        assert cancelled is not None and (cancelled.status, cancelled.processed, cancelled.matched) == (
            "cancelled", 0, {})
