"""Contract suite of a sort job counted in shards (its document written at creation and end, not per image), on
every store backend."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from common.adapters.store.recorder import RecordingDocuments, read_records
from common.core import errors
from common.records import job_shards, usage
from common.records.port import Doc, DocumentStore, Tx
from common.records.records import ImageOutcome, Job
from common.records.store import Store

T = TypeVar("T")


def stored(size: int | None) -> Callable[[str], int | None]:
    return lambda key: size


class Writes:
    """Counts the documents each committed transaction wrote, by kind and key."""

    def __init__(self, docs: DocumentStore) -> None:
        self.docs, self.counts = docs, {}  # type: ignore[var-annotated]

    def transact(self, work: Callable[[Tx], object]) -> object:
        written: list[tuple[str, str]] = []

        class Counting:
            def get(self, kind: str, key: str) -> Doc | None:
                return tx_ref[0].get(kind, key)

            def put(self, kind: str, key: str, doc: Doc) -> None:
                written.append((kind, key))
                tx_ref[0].put(kind, key, doc)

            def delete(self, kind: str, key: str) -> None:
                written.append((kind, key))
                tx_ref[0].delete(kind, key)

        tx_ref: list[Tx] = []

        def attempt(tx: Tx) -> object:
            written.clear()
            tx_ref[:] = [tx]
            return work(Counting())

        result = self.docs.transact(attempt)
        for item in written:
            self.counts[item] = self.counts.get(item, 0) + 1
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self.docs, name)


def retried(call: Callable[..., T], *args: object) -> T:
    """`call(*args)`, retried while the database answers busy (contention, or a loaded machine's slow server)."""
    for _ in range(200):
        try:
            return call(*args)
        except errors.Unavailable:
            time.sleep(0.05)
    return call(*args)


def make_job(store: Store, names: list[str], tokens: int = 500) -> Job:
    store.create_account("owner", "h", "k-owner", tokens)
    job = Job(id="job1", owner="owner", classes=["dog", "cat"], source="all/", min_score=0.3, total=len(names),
              created=time.time())
    return store.create_job(job, len(names), "owner:job:job1", names)


def test_a_sharded_job_counts_exactly_and_writes_its_document_per_job_not_per_image(store: Store) -> None:
    names = [f"all/{i}.png" for i in range(90)]
    job = make_job(store, names)
    assert job.shards == 3 and sum(job.shard_expected) == 90
    writes = Writes(store.docs)
    store.docs = writes  # type: ignore[assignment]
    for i, name in enumerate(names):
        outcome = ImageOutcome(name, "failed") if i % 10 == 0 else ImageOutcome(name, "dog", f"dog/{i}", usage=(5, 1))
        assert store.record_image("job1", outcome)
        assert not store.record_image("job1", outcome)  # a redelivery counts nothing
    running = store.get_job("job1")  # a classified image shows once its output is in place
    assert running is not None and (running.status, running.processed, running.failed, running.writing) == (
        "running", 9, 9, 0) and not running.ended
    assert store.get_account("owner").tokens == 410  # type: ignore[union-attr]  # failures refunded at the end
    for i, name in enumerate(names):
        if i % 10:
            assert store.mark_written("job1", name, stored(5))
    done = store.get_job("job1")
    assert done is not None and (done.status, done.processed, done.matched, done.failed, done.writing) == (
        "done", 90, {"dog": 81}, 9, 0)
    assert job.created <= done.ended <= time.time()  # the close that summed its shards says when
    assert store.get_account("owner").tokens == 419  # type: ignore[union-attr]  # one refund for the job
    assert store.usage("owner") == (81 * 5, 81)
    assert writes.counts.get(("jobs", "job1"), 0) == 1  # closed once
    assert max(n for (kind, _), n in writes.counts.items() if kind == "job_shards") <= 40
    assert (writes.counts[("job_closers", "job1:g0")], writes.counts[("job_closers", "job1")]) == (3, 1)
    assert max(n for (kind, _), n in writes.counts.items() if kind == "usage_shards") < 81


def test_cancelling_a_sharded_job_refunds_the_rest_and_its_failures_once(store: Store) -> None:
    names = [f"all/{i}.png" for i in range(50)]
    make_job(store, names, tokens=50)
    assert store.record_image("job1", ImageOutcome(names[0], "failed"))
    assert store.record_image("job1", ImageOutcome(names[1], "dog", "dog/1", usage=(3, 1)))
    assert store.record_image("job1", ImageOutcome(names[2], "dog", "dog/2", usage=(3, 1)))
    assert store.mark_written("job1", names[2], stored(3))
    job = store.finish_job("job1", "cancelled")
    assert (job.status, job.processed, job.failed, job.writing) == ("cancelled", 2, 1, 0)
    assert store.get_account("owner").tokens == 49  # type: ignore[union-attr]  # all but the settled one
    assert not store.record_image("job1", ImageOutcome(names[3], "dog", "dog/3"))  # finished: nothing more
    # names[1] was recorded, not settled: the cancel refunded it, so its output is not the job's
    assert not store.mark_written("job1", names[1], stored(3))
    record = store.image_record("job1", names[1])
    assert record is not None and not record.awaiting_copy and "job ended" in str(record.detail)
    assert not store.mark_written("job1", names[1], stored(None))  # a redelivery: nothing
    assert not store.keep_unwritten("job1", names[1], "late", stored(None))
    job = store.get_job("job1")  # type: ignore[assignment]
    assert job is not None and (job.status, job.processed, job.writing, job.not_written) == ("cancelled", 2, 0, 0)
    assert store.finish_job("job1", "failed").status == "cancelled"
    assert store.get_account("owner").tokens == 49  # type: ignore[union-attr]


def test_an_output_left_unwritten_after_the_end_is_refunded_once(store: Store) -> None:
    names = [f"all/{i}.png" for i in range(50)]
    make_job(store, names, tokens=50)
    assert store.record_image("job1", ImageOutcome(names[0], "dog", "dog/0", usage=(3, 1)))
    assert store.finish_job("job1", "failed", "stalled").failed == 50  # the sweeper: every unsettled image
    assert not store.keep_unwritten("job1", names[0], "a file of yours is there", stored(7))
    record = store.image_record("job1", names[0])
    assert record is not None and not record.awaiting_copy and "job ended" in str(record.detail)
    job = store.get_job("job1")
    assert job is not None and (job.processed, job.failed, job.not_written) == (0, 50, 0)
    assert store.get_account("owner").tokens == 50  # type: ignore[union-attr]
    assert store.usage("owner") == (7, 1)  # what is stored there (the owner's file), counted once


def test_each_image_of_a_sharded_job_writes_its_shard_once(store: Store, tmp_path: Path) -> None:
    """A shard is the job's hottest document: one write per image (failed when recorded, classified when its
    output settles), redeliveries included. Before: a classified image wrote it twice."""
    names = [f"all/{i}.png" for i in range(120)]
    job = make_job(store, names)
    inner = store.docs
    store.docs = RecordingDocuments(inner, tmp_path / "writes")
    for i, name in enumerate(names):
        outcome = ImageOutcome(name, "failed") if i % 7 == 0 else ImageOutcome(name, "cat", f"cat/{i}", usage=(2, 1))
        for _ in range(2):  # a redelivery
            store.record_image("job1", outcome)
            if i % 7 and i % 5 == 0:
                store.keep_unwritten("job1", name, "a file of yours is there", stored(None))
            elif i % 7:
                store.mark_written("job1", name, stored(2))
    store.docs = inner
    shard_writes: dict[str, int] = {}
    for record in read_records(tmp_path / "writes"):
        for kind, key in record.writes:
            if kind == job_shards.SHARDS:
                shard_writes[key] = shard_writes.get(key, 0) + 1
    assert shard_writes == {f"job1:{i}": n for i, n in enumerate(job.shard_expected)}
    # the owner's usage shards: one write for an output that stored what it reserved (when recorded), two for one
    # left unwritten (its reservation given back); before, closing a write wrote its shard again with no change
    usage_writes = sum(1 for record in read_records(tmp_path / "writes") for kind, _ in record.writes
                       if kind == usage.SHARDS)
    assert usage_writes == sum(1 for i in range(120) if i % 7) + sum(1 for i in range(120) if i % 7 and i % 5 == 0)
    done = store.get_job("job1")
    assert done is not None and done.status == "done" and done.processed == 120 and done.writing == 0
    assert done.not_written == sum(1 for i in range(120) if i % 7 and i % 5 == 0)


def test_a_job_plans_equal_shards_that_a_key_alone_finds() -> None:
    """The busiest shard is the one that meets the per-document limit first: CRC ranges give every shard the
    same share of the job's images (a CRC modulo the count did not), and a worker finds an image's shard from
    its key and the job's document alone. A job planned before the ranges keeps the modulo."""
    names = [f"holiday/{i:05d}.jpg" for i in range(10_000)]
    job = Job(id="j", owner="o", classes=["cat"], source="holiday/", min_score=0.0, total=len(names))
    job_shards.plan(job, names)
    assert job.shards == job_shards.MAX_SHARDS and max(job.shard_expected) - min(job.shard_expected) <= 1
    found = [0] * job.shards
    for name in names:
        found[job_shards.shard_of(job, name)] += 1
    assert found == job.shard_expected and sum(found) == len(names)
    older = Job.from_doc({**job.doc(), "shard_bounds": []})
    assert job_shards.shard_of(older, names[0]) == zlib.crc32(names[0].encode()) % job.shards


def test_concurrent_workers_of_a_sharded_job_end_it_exactly_once(store: Store) -> None:
    """More shards than a group: shards complete on two group closers racing each other and the top closer."""
    names = [f"all/{i}.png" for i in range(360)]
    planned = make_job(store, names, tokens=360)
    assert (planned.shards, planned.closer_groups) == (9, 2)

    def work(part: int) -> None:
        for name in names[part::6] * 2:  # every image twice
            retried(store.record_image, "job1", ImageOutcome(name, "failed") if name.endswith("7.png")
                    else ImageOutcome(name, "cat", f"cat/{name}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    job = store.get_job("job1")
    failed = sum(1 for n in names if n.endswith("7.png"))
    # every output still being written: only the failures count yet, not done; then each lands
    assert job is not None and job.processed == failed and job.failed == failed
    assert job.status == "running" and job.writing == 0
    for name in names:
        if not name.endswith("7.png"):
            store.mark_written("job1", name, stored(1))
    job = store.get_job("job1")
    assert job is not None and job.status == "done" and job.matched == {"cat": 360 - failed}
    assert store.get_account("owner").tokens == failed  # type: ignore[union-attr]


def test_an_image_re_driven_into_a_complete_shard_does_not_close_the_job_early(store: Store) -> None:
    names = [f"all/{i}.png" for i in range(90)]
    job = make_job(store, names)
    first = [n for n in names if job_shards.shard_of(job, n) == 0]
    extra = next(f"all/new{i}.png" for i in range(1000) if job_shards.shard_of(job, f"all/new{i}.png") == 0)
    for name in first:
        assert store.record_image("job1", ImageOutcome(name, "failed"))
    assert store.record_image("job1", ImageOutcome(extra, "failed"))  # a file added since, re-driven by an operator
    rest = [n for n in names if n not in first]
    for name in rest[:-1]:
        assert store.record_image("job1", ImageOutcome(name, "failed"))
    assert store.get_job("job1").status == "running"  # type: ignore[union-attr]
    assert store.record_image("job1", ImageOutcome(rest[-1], "failed"))
    done = store.get_job("job1")
    assert done is not None and (done.status, done.processed, done.failed) == ("done", 91, 91)
    assert store.get_account("owner").tokens == 500  # type: ignore[union-attr]  # never more than was spent


def test_an_image_recorded_before_counting_on_settle_settles_as_it_was_counted(store: Store) -> None:
    """A job in flight across the deploy: its image counted on its shard when recorded (processed, writing)
    settles by releasing `writing` only, and is not counted twice."""
    make_job(store, ["all/a.png"], tokens=1)
    assert store.record_image("job1", ImageOutcome("all/a.png", "dog", "dog/a", usage=(3, 1)))

    def as_before(tx: Tx) -> None:  # the record and the shard as the earlier design left them
        tx.put("job_images", "job1/all/a.png", {**tx.get("job_images", "job1/all/a.png"),  # type: ignore[dict-item]
                                                 job_shards.SETTLE_COUNTS: False})
        shard = Job(id="job1", owner="owner", classes=[], source="", min_score=0.0, total=1, created=time.time())
        shard.processed, shard.writing, shard.matched, shard.status = 1, 1, {"dog": 1}, "running"
        tx.put(job_shards.SHARDS, "job1:0", {**shard.doc(), "job_id": "job1", "counted": False, "closed": False})

    store.docs.transact(as_before)
    running = store.get_job("job1")
    assert running is not None and (running.status, running.processed, running.writing) == ("running", 1, 1)
    assert store.mark_written("job1", "all/a.png", stored(3))
    done = store.get_job("job1")
    assert done is not None and (done.status, done.processed, done.matched, done.writing) == (
        "done", 1, {"dog": 1}, 0)
    assert store.get_account("owner").tokens == 0  # type: ignore[union-attr]


def test_a_cancel_racing_the_outputs_landing_charges_exactly_the_outputs_kept(store: Store) -> None:
    """Each output either lands before the cancel (counted, charged, kept) or is refused after it (refunded);
    on a loaded machine the outputs may all land first, and the same books must hold."""
    names = [f"all/{i}.png" for i in range(60)]
    make_job(store, names, tokens=60)
    for name in names:
        assert store.record_image("job1", ImageOutcome(name, "cat", f"cat/{name}", usage=(1, 1)))
    kept: dict[str, bool] = {}
    some_landed = threading.Event()

    def land(part: int) -> None:
        for name in names[part::4]:
            for _ in range(200):
                try:
                    kept[name] = store.mark_written("job1", name, stored(1))
                    break
                except errors.Unavailable:
                    time.sleep(0.05)
            if len(kept) >= 8:
                some_landed.set()

    threads = [threading.Thread(target=land, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    assert some_landed.wait(120)
    cancelled = store.finish_job("job1", "cancelled")
    for t in threads:
        t.join(120)
    assert len(kept) == 60 and cancelled.status in ("cancelled", "done")  # done: every output landed first
    landed = {name for name, ok in kept.items() if ok}
    assert len(landed) >= 8 and cancelled.processed == len(landed) == sum(cancelled.matched.values())
    assert store.get_account("owner").tokens == 60 - len(landed)  # type: ignore[union-attr]
    for name in names:
        record = store.image_record("job1", name)
        assert record is not None and not record.awaiting_copy and record.written == (name in landed)
        assert store.mark_written("job1", name, stored(1)) == (name in landed)  # a redelivery: the same answer
    assert store.get_job("job1").processed == len(landed)  # type: ignore[union-attr]


def closer_writes(folder: Path) -> tuple[dict[str, int], int]:
    """The writes each closer took, and how many times the job's document was written."""
    closers: dict[str, int] = {}
    job_writes = 0
    for record in read_records(folder):
        for kind, key in record.writes:
            if kind == job_shards.CLOSERS:
                closers[key] = closers.get(key, 0) + 1
            job_writes += (kind, key) == ("jobs", "job1")
    return closers, job_writes


def test_no_closer_takes_every_shards_write_in_the_jobs_last_second(store: Store, tmp_path: Path) -> None:
    """Equal shards complete together: before, the job's one closer took a write per shard in its last second;
    a group closer now takes one per shard of its group, the top closer one per group."""
    names = [f"all/{i}.png" for i in range(1000)]
    job = make_job(store, names, tokens=1000)
    groups = -(-job.shards // job_shards.GROUP)
    assert job.shards == 25 and job.closer_groups == groups == 4
    inner = store.docs
    store.docs = RecordingDocuments(inner, tmp_path / "writes")
    for i, name in enumerate(names):  # retried: a redelivery counts nothing twice
        retried(store.record_image, "job1", ImageOutcome(name, "dog", f"dog/{i}") if i % 10 == 0
                else ImageOutcome(name, "failed"))
        if i % 10 == 0:
            assert retried(store.mark_written, "job1", name, stored(1))
    store.docs = inner
    closers, job_writes = closer_writes(tmp_path / "writes")
    assert max(closers.values()) <= max(job_shards.GROUP, groups) and sum(closers.values()) == job.shards + groups
    assert job_writes == 1  # closed once
    done = store.get_job("job1")
    assert done is not None and (done.status, done.processed, done.failed, done.matched) == (
        "done", 1000, 900, {"dog": 100})
    assert store.get_account("owner").tokens == 900  # type: ignore[union-attr]  # its failures, refunded once


def test_a_job_planned_with_one_closer_still_closes(store: Store, tmp_path: Path) -> None:
    """A job created before the group closers (in flight across the deploy) counts its shards on its one
    closer, and closes as it did."""
    names = [f"all/{i}.png" for i in range(400)]
    job = make_job(store, names, tokens=400)
    assert job.shards > job_shards.GROUP

    def as_before(tx: Tx) -> None:
        tx.put("jobs", "job1", {**tx.get("jobs", "job1"), "closer_groups": 0})  # type: ignore[dict-item]

    store.docs.transact(as_before)
    inner = store.docs
    store.docs = RecordingDocuments(inner, tmp_path / "writes")
    for name in names:
        retried(store.record_image, "job1", ImageOutcome(name, "failed"))
    store.docs = inner
    assert closer_writes(tmp_path / "writes") == ({"job1": job.shards}, 1)
    done = store.get_job("job1")
    assert done is not None and (done.status, done.processed, done.failed) == ("done", 400, 400)
    assert store.get_account("owner").tokens == 400  # type: ignore[union-attr]
