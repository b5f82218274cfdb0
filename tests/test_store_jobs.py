"""Contract suite of the store's jobs, on SQLite and the Firestore emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from common.core import errors
from common.jobs.service import describe
from common.records.records import ImageOutcome, Job
from common.records.store import Store


def stored(size: int | None) -> Callable[[str], int | None]:
    """A probe of the storage: what it holds at any key (the store counts what is stored)."""
    return lambda key: size


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
    assert job is not None and (job.status, job.processed, job.writing, job.ended) == ("running", 3, 2, 0.0)
    assert "ended" not in describe(job)
    assert store.mark_written("job1", "all/a.png", stored(40)) and store.mark_written("job1", "all/b.png", stored(40))
    assert store.mark_written("job1", "all/a.png", stored(40))  # a redelivered copy settles nothing twice
    job = store.get_job("job1")
    assert job is not None and job.writing == 0
    assert (job.status, job.processed, job.matched, job.unmatched, job.failed) == ("done", 3, {"dog": 1}, 1, 1)
    assert describe(job)["percentage"] == 100.0 and describe(job)["matched"] == {"dog": 1, "cat": 0}
    assert job.created <= job.ended <= time.time() and describe(job)["ended"] == job.ended  # when its last copy landed
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
    assert store.keep_unwritten("job1", "all/b.png", "a file where its folder should be", stored(None))
    assert not store.keep_unwritten("job1", "all/b.png", "again", stored(None))  # counted once
    assert not store.keep_unwritten("job1", "all/never.png", "never recorded", stored(None))
    job = store.get_job("job1")  # a.png's output is still being copied
    assert job is not None and (job.status, job.processed, job.matched, job.unmatched, job.failed,
                                job.not_written) == ("running", 2, {"dog": 1}, 1, 0, 1)
    assert store.usage("owner") == (140, 2) and store.get_account("owner").tokens == 3  # type: ignore[union-attr]
    assert [i.outcome for i in store.job_images("job1")] == ["dog", "unmatched"]
    assert store.mark_written("job1", "all/a.png", stored(40)) and store.mark_written("job1", "all/a.png", stored(40))
    assert store.get_job("job1").status == "done"  # type: ignore[union-attr]
    assert not store.keep_unwritten("job1", "all/a.png", "late", stored(None))  # a written output stays the job's
    assert not store.mark_written("job1", "all/b.png", stored(None))  # settled unwritten: its file would not be the job's
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
    cancelled = store.finish_job("job1", "cancelled")
    assert cancelled.status == "cancelled" and cancelled.created <= cancelled.ended <= time.time()
    assert store.mark_written("job1", "all/a.png", stored(40))  # the copy of an image classified before the cancel
    job = store.get_job("job1")
    assert job is not None and (job.status, job.processed, job.writing) == ("cancelled", 1, 0)
    assert job.ended == cancelled.ended  # it ended when it was cancelled, not when its last copy landed


def test_space_writes_count_what_is_stored_in_any_order(store: Store) -> None:
    """Two writes of one path racing: whichever lands last, the last close counts it; the quota holds both while
    they are open; a failed write and a writer that died are put back to what is stored."""
    store.create_account("ann", "h", "k-ann", 5)
    disk: dict[str, int] = {}
    probe = disk.get
    limits = (1000, 10)
    store.open_space_write("ann", "k/p", 600, "a", probe, limits)
    with pytest.raises(errors.Forbidden):  # 600 + 600 would not fit, though only one of them will stay
        store.open_space_write("ann", "k/p", 600, "b", probe, limits)
    store.open_space_write("ann", "k/p", 100, "b", probe, limits)
    assert store.usage("ann") == (700, 2)  # both reserved, as if each one's old content stayed
    disk["k/p"] = 100  # b lands, then a over it, then b closes before a
    disk["k/p"] = 600
    store.close_space_write("b", "ann", "k/p", probe)
    store.close_space_write("a", "ann", "k/p", probe)
    store.close_space_write("a", "ann", "k/p", probe)  # closing twice changes nothing
    assert store.usage("ann") == (600, 1)
    store.open_space_write("ann", "k/p", 50, "c", probe, limits)  # a write that fails: nothing changes
    store.close_space_write("c", "ann", "k/p", probe)
    assert store.usage("ann") == (600, 1)
    store.open_space_write("ann", "k/q", 200, "d", probe, limits)  # a writer that dies after its write
    disk["k/q"] = 200
    assert store.close_expired_writes(probe, now=time.time() + 60) == 0  # within its lease: left alone
    assert store.close_expired_writes(probe, now=time.time() + 3600) == 1
    assert store.usage("ann") == (800, 2)
    store.open_space_write("ann", "k/p", 0, "e", probe, None)  # a removal
    del disk["k/p"]
    store.close_space_write("e", "ann", "k/p", probe)
    assert store.usage("ann") == (200, 1)


def test_a_record_does_not_shrink_under_a_write_reserved_against_it(store: Store) -> None:
    store.create_account("ann", "h", "k-ann", 5)
    disk: dict[str, int] = {}
    probe = disk.get
    store.open_space_write("ann", "k/p", 500, "first", probe, (1000, 10))  # the file, counted
    disk["k/p"] = 500
    store.close_space_write("first", "ann", "k/p", probe)
    store.open_space_write("ann", "k/p", 600, "a", probe, (1000, 10))  # alone: reserves the 100 it grows by
    store.open_space_write("ann", "k/p", 10, "b", probe, (1000, 10))  # beside it: all of its 10
    disk["k/p"] = 10
    store.close_space_write("b", "ann", "k/p", probe)
    assert store.usage("ann") == (600, 1)  # still 500 counted under a's 100
    disk["k/p"] = 600
    store.close_space_write("a", "ann", "k/p", probe)
    assert store.usage("ann") == (600, 1)
