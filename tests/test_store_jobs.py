"""Contract suite of the store's jobs, on SQLite and the Firestore emulator."""

from __future__ import annotations

import threading
import time

import pytest

from common import errors
from common.store.records import ImageOutcome, Job
from common.store.store import Store


def make_job(store: Store, total: int = 3, tokens: int = 5) -> Job:
    store.create_account("owner", "h", "k-owner", tokens)
    job = Job(id="job1", owner="owner", classes=["dog", "cat"], source="all/", min_score=0.3, total=total,
              created=time.time())
    return store.create_job(job, total, "owner:job:job1")


def test_create_reserves_tokens_atomically(store: Store) -> None:
    make_job(store)
    assert store.get_account("owner").tokens == 2  # type: ignore[union-attr]
    job = store.get_job("job1")
    assert job is not None and job.status == "queued" and job.total == 3 and job.classes == ["dog", "cat"]
    assert store.get_job("nope") is None
    short = Job(id="job2", owner="owner", classes=["dog"], source="all/", min_score=0.3, total=3)
    with pytest.raises(errors.InsufficientTokens):
        store.create_job(short, 3, "owner:job:job2")
    assert store.get_job("job2") is None and store.get_account("owner").tokens == 2  # type: ignore[union-attr]


def test_record_counts_once_and_refunds_failures(store: Store) -> None:
    make_job(store)
    assert store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a.png"))
    assert not store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a.png"))  # redelivery
    assert store.record_image("job1", ImageOutcome("all/b.png", "unmatched", "unmatched/b.png"))
    assert store.get_job("job1").status == "running"  # type: ignore[union-attr]
    assert store.record_image("job1", ImageOutcome("all/c.txt", "failed", detail="not an image"))
    assert not store.record_image("job1", ImageOutcome("all/c.txt", "failed"))
    job = store.get_job("job1")  # every image recorded, two outputs still being copied: not done yet
    assert job is not None and (job.status, job.processed, job.writing) == ("running", 3, 2)
    assert store.mark_written("job1", "all/a.png") and store.mark_written("job1", "all/b.png")
    assert store.mark_written("job1", "all/a.png")  # a redelivered copy settles nothing twice
    job = store.get_job("job1")
    assert job is not None and job.writing == 0
    assert (job.status, job.processed, job.matched, job.unmatched, job.failed) == ("done", 3, {"dog": 1}, 1, 1)
    assert job.public()["percentage"] == 100.0 and job.public()["matched"] == {"dog": 1, "cat": 0}
    assert store.get_account("owner").tokens == 3  # type: ignore[union-attr]
    with pytest.raises(errors.NotFound):
        store.record_image("ghost", ImageOutcome("x", "dog"))


def test_outputs_count_in_the_space_and_an_unwritable_one_is_charged_and_reported(store: Store) -> None:
    make_job(store, total=2)
    store.change_usage("owner", 100, 1, 10**6, 10)  # an upload
    assert store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a.png", usage=(40, 1)))
    assert not store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a.png", usage=(40, 1)))  # again
    assert store.record_image("job1", ImageOutcome("all/b.png", "unmatched", "unmatched/b.png", usage=(30, 1)))
    assert store.usage("owner") == (170, 3)  # each output counted once
    assert store.keep_unwritten("job1", "all/b.png", "a file where its folder should be")
    assert not store.keep_unwritten("job1", "all/b.png", "again")  # counted once
    assert not store.keep_unwritten("job1", "all/never.png", "never recorded")
    job = store.get_job("job1")  # a.png's output is still being copied
    assert job is not None and (job.status, job.processed, job.matched, job.unmatched, job.failed,
                                job.not_written) == ("running", 2, {"dog": 1}, 1, 0, 1)
    assert store.usage("owner") == (140, 2) and store.get_account("owner").tokens == 3  # type: ignore[union-attr]
    assert [i.outcome for i in store.job_images("job1")] == ["dog", "unmatched"]
    assert store.mark_written("job1", "all/a.png") and store.mark_written("job1", "all/a.png")
    assert store.get_job("job1").status == "done"  # type: ignore[union-attr]
    assert not store.keep_unwritten("job1", "all/a.png", "late")  # a written output stays the job's
    assert not store.mark_written("job1", "all/b.png")  # settled unwritten: its file would not be the job's
    assert store.image_record("job1", "all/a.png") == ImageOutcome("all/a.png", "dog", "dog/a.png", None, (40, 1),
                                                                   written=True)
    assert store.image_record("job1", "all/none.png") is None


def test_concurrent_records_add_up(store: Store) -> None:
    make_job(store, total=20, tokens=20)

    def record(i: int) -> None:
        outcome = ImageOutcome(f"all/{i % 10}.png", "failed" if i % 10 == 0 else "cat")
        for _ in range(200):
            try:
                store.record_image("job1", outcome)
                return
            except errors.Unavailable:
                time.sleep(0.05)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(20)]  # every image twice
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    job = store.get_job("job1")
    assert job is not None and job.processed == 10 and job.matched == {"cat": 9} and job.failed == 1
    assert store.get_account("owner").tokens == 1  # type: ignore[union-attr]


def test_empty_job(store: Store) -> None:
    store.create_account("owner", "h", "k", 0)
    job = Job(id="empty", owner="owner", classes=["dog"], source="none/", min_score=0.3, total=0, status="done")
    store.create_job(job, 0, "owner:job:empty")
    assert store.get_job("empty").status == "done"  # type: ignore[union-attr]
    store.set_job_status("empty", "failed")
    assert store.get_job("empty").status == "failed"  # type: ignore[union-attr]


def test_a_finished_job_stays_finished_when_its_last_copies_land(store: Store) -> None:
    make_job(store, total=2)
    assert store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a.png"))
    assert store.finish_job("job1", "cancelled").status == "cancelled"
    assert store.mark_written("job1", "all/a.png")  # the copy of an image classified before the cancel
    job = store.get_job("job1")
    assert job is not None and (job.status, job.processed, job.writing) == ("cancelled", 1, 0)
