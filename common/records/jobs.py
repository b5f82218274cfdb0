"""Sort-job records and their rules, written once for every adapter.

- A job and the reservation of its tokens are created in one commit.
- Each image of a job is recorded once (one record per image): a redelivered
  message changes nothing.
- A job's images count in counters sharded by image (`job_shards.py`), each once, when it is settled (failed;
  or its output written or left unwritten), so a shard takes one write per image; the job's document is written
  when it is created and when it ends (and says when: `ended`). An image recorded but not settled when the job
  ends was refunded by the end: its output is then not the job's. Failed images are refunded when the job ends,
  under one refund id per job (older, unsharded jobs: each counts on the job's document as it is recorded and
  as its output settles, its failure refunded per image).
- A job is done when every image is settled (an output written, or counted
  `not_written`: never written over a different file, still charged): a user
  who sees `done` finds every file. A finished job records nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from common.core import errors, metrics
from common.records import job_shards, webhooks
from common.records.ledger import apply_refund, charge
from common.records.port import Doc, DocumentStore, Tx, transact_then
from common.records.records import ImageOutcome, Job
from common.records.usage import Probe, close_write, open_write

JOBS, IMAGES = "jobs", "job_images"
JOB_ENDED = "The job ended before this image's output was written; the image was refunded."
T = TypeVar("T")


def image_refund_id(job_id: str, key: str) -> str:
    return f"{job_id}:{key}"


def output_write_id(job_id: str, key: str) -> str:
    """The space write of one image's output (opened when the image is recorded, closed once its copy is in
    place or will never be): see `common/records/usage.py`."""
    return f"{job_id}/{key}:output"


def _unwritten(prior: Doc, detail: str) -> Doc:
    """An image's record once its output will never be written: nothing awaits a copy, a redelivery does nothing."""
    return {**prior, "destination": None, "detail": detail, "usage": [0, 0]}


def unknown_job(job_id: str) -> errors.NotFound:
    return errors.NotFound(f"There is no job {job_id[:80]!r}.", code="unknown_job")


def _add_outcome(job: Job, outcome: str, step: int = 1) -> None:
    """Add (or, with step -1, take back) one image's outcome in a job's counters."""
    if outcome == "failed":
        job.failed += step
    elif outcome == "unmatched":
        job.unmatched += step
    else:
        job.matched[outcome] = max(0, job.matched.get(outcome, 0) + step)
    job.updated = time.time()


def count(job: Job, outcome: ImageOutcome) -> bool:
    """Add one image's outcome to a job's counters (and its output to those being written). True when that
    made the job done."""
    job.processed += 1
    job.writing += int(outcome.awaiting_copy)
    _add_outcome(job, outcome.outcome)
    job.status = "running"
    return settle(job)


def output_settled(job: Job) -> bool:
    """One output that was being written is in place, or failed: it no longer holds the job open. True when
    that made the job done."""
    job.writing = max(0, job.writing - 1)  # a job recorded before `writing` existed counts none
    job.updated = time.time()  # progress: the sweeper leaves a job alone while its copies land
    return settle(job)


def settle(job: Job) -> bool:
    """Move a running job to done once every image is recorded and no output is still being written; True
    when this call did (the caller then reports the job finished)."""
    if job.status == "running" and job.processed >= job.total and job.writing == 0:
        job.end("done")
        return True
    return False


def report_finished(job: Job) -> None:
    metrics.finished("job", job.status, job.created, job=job.id, images=job.total)
    webhooks.kick_for(job, webhooks.job_event)


class JobRecords:
    docs: DocumentStore

    def _transact(self, work: Callable[[Tx, list[Job]], T]) -> T:
        """Run `work` in a transaction; the jobs it finished are reported once it has committed. The delivery of
        a finished job's webhook is recorded in that commit."""
        return transact_then(self.docs, webhooks.announcing(work, webhooks.job_event), report_finished)

    def create_job(self, job: Job, spend_amount: int, spend_id: str, objects: list[str] | None = None,
                   key_id: str = "") -> Job:
        """Create a job and charge it; given its `objects`, its images count in shards (`job_shards.py`)."""
        job.spend_id = spend_id
        if objects:
            job_shards.plan(job, objects)

        def work(tx: Tx) -> None:
            if spend_amount:
                charge(tx, job.owner, spend_amount, spend_id, kind="job", key_id=key_id)
            tx.get(JOBS, job.id)
            tx.put(JOBS, job.id, job.doc())
            if job.finished:  # nothing to sort: done at once, announced at once
                webhooks.announce(tx, job.owner, job.webhook, webhooks.job_event(job))

        self.docs.transact(work)
        if job.finished:
            webhooks.kick_for(job, webhooks.job_event)
        return job

    def get_job(self, job_id: str) -> Job | None:
        """A job with its progress (summed from its shards while it runs)."""
        job = self.job_header(job_id)
        return job_shards.with_progress(self.docs, job) if job else None

    def job_header(self, job_id: str) -> Job | None:
        """A job's document alone: what it sorts, whose it is, whether it is finished (the worker's read per
        image, which must not cost a read per shard); its counters are those of its creation or end."""
        doc = self.docs.get(JOBS, job_id)
        return Job.from_doc(doc) if doc else None

    def record_image(self, job_id: str, outcome: ImageOutcome) -> bool:
        """Count one image's outcome; False when it was counted before or the job is finished."""
        return self.record_image_once(job_id, outcome)[1]

    def record_image_once(self, job_id: str, outcome: ImageOutcome,
                          probe: Probe | None = None) -> tuple[ImageOutcome | None, bool]:
        """(the image's recorded outcome, whether this call recorded it). The outcome recorded first stands, so a
        redelivery gets the same answer; a job that finished before the image was recorded gives (None, False).
        A classified image's output opens its space write here (`probe`: what the storage holds at a key); in a
        sharded job it counts on its shard only once settled (`mark_written`, `keep_unwritten`)."""

        def work(tx: Tx, finished: list[Job]) -> tuple[ImageOutcome | None, bool]:
            doc = tx.get(JOBS, job_id)
            if doc is None:
                raise unknown_job(job_id)
            job = Job.from_doc(doc)
            record_key = f"{job_id}/{outcome.object}"
            prior = tx.get(IMAGES, record_key)
            if prior is not None:  # a redelivered message: already accounted for
                return ImageOutcome.from_doc(prior), False
            if job.finished:
                return None, False
            shard = job_shards.read_shard(tx, job, outcome.object) if job.shards else None
            if shard is not None and shard.closed:  # ended meanwhile (its document read before the end committed)
                return None, False
            on_settle = shard is not None and outcome.outcome != "failed"
            tx.put(IMAGES, record_key, {"job_id": job_id, "object": outcome.object, "outcome": outcome.outcome,
                                        "destination": outcome.destination, "detail": outcome.detail,
                                        "usage": list(outcome.usage), job_shards.SETTLE_COUNTS: on_settle})
            if outcome.outcome == "failed" and not job.shards:  # a sharded job refunds its failures when it ends
                apply_refund(tx, job.owner, job.spend_id, 1, image_refund_id(job_id, outcome.object))
            elif outcome.outcome != "failed":  # its output counts in the space, as an upload would (paid: no quota)
                open_write(tx, job.owner, str(outcome.destination), outcome.usage[0],
                           output_write_id(job_id, outcome.object), probe, sharded=bool(job.shards))
            if shard is not None:  # only read for a classified image, written for a failed one
                closed = None if on_settle else job_shards.put_shard(tx, job, shard, count(shard.counts, outcome))
                finished.extend([closed] if closed else [])
                return outcome, True
            if count(job, outcome):
                finished.append(job)
            tx.put(JOBS, job_id, job.doc())
            return outcome, True

        recorded, new = self._transact(work)
        if new:
            metrics.count("images_classified", int(outcome.outcome != "failed"), via="sort_worker")
        return recorded, new

    def keep_unwritten(self, job_id: str, obj: str, detail: str, probe: Probe) -> bool:
        """An image's output could not be written (a file of the owner's in its way, its source deleted): the
        image stays classified and charged (the answer was given), its output counted `not_written`, its space
        write closed on what is stored there. False when settled already, never recorded, or the job's end
        refunded it (as in `mark_written`)."""

        def work(tx: Tx, finished: list[Job]) -> bool:
            doc, record_key = tx.get(JOBS, job_id), f"{job_id}/{obj}"
            prior = tx.get(IMAGES, record_key)
            if doc is None or prior is None or not ImageOutcome.from_doc(prior).awaiting_copy:
                return False  # a written output stays the job's, whatever happens to the file later
            close_write(tx, output_write_id(job_id, obj), doc["owner"], prior["destination"], probe)
            kept = self._settle_output(tx, Job.from_doc(doc), prior, finished, unwritten=1)
            tx.put(IMAGES, record_key, _unwritten(prior, detail if kept else JOB_ENDED))
            return kept

        return self._transact(work)

    def finish_job(self, job_id: str, status: str, error: str | None = None) -> Job:
        """End a job that is not finished (cancelled by its owner, or closed by the sweeper): the images not yet
        processed are counted failed and their tokens refunded, once; later messages change nothing."""

        def work(tx: Tx, finished: list[Job]) -> Job:
            doc = tx.get(JOBS, job_id)
            if doc is None:
                raise unknown_job(job_id)
            job = Job.from_doc(doc)
            if job.finished:
                return job
            job = job_shards.close_shards(tx, job) if job.shards else job
            finished.append(job)
            remaining = job.total - job.processed
            refund = job_shards.unclassified(job) if job.shards else remaining  # sharded: its failures too, now
            apply_refund(tx, job.owner, job.spend_id, refund, job_shards.finish_refund_id(job_id))
            job.failed += remaining if status != "cancelled" else 0
            job.end(status)
            job.error, job.updated = error, job.ended
            tx.put(JOBS, job_id, job.doc())
            return job

        return self._transact(work)

    def job_images(self, job_id: str, limit: int = 20_000) -> list[ImageOutcome]:
        """The images of a job recorded so far (an operator re-drives the others)."""
        return [ImageOutcome.from_doc(doc) for _, doc in self.docs.find(IMAGES, "job_id", job_id, limit)]

    def image_record(self, job_id: str, obj: str) -> ImageOutcome | None:
        """What was recorded for one image of a job, if anything."""
        doc = self.docs.get(IMAGES, f"{job_id}/{obj}")
        return None if doc is None else ImageOutcome.from_doc(doc)

    def mark_written(self, job_id: str, obj: str, probe: Probe) -> bool:
        """Note that an image's output is in place (the job is done when the last one is) and count what is
        stored there; False when the image was failed or left unwritten meanwhile, never recorded, or refunded
        by the job's end before it counted on its shard: its file is then not the job's (the caller removes it)."""

        def work(tx: Tx, finished: list[Job]) -> bool:
            prior, doc = tx.get(IMAGES, f"{job_id}/{obj}"), tx.get(JOBS, job_id)
            if prior is not None and prior.get("destination") and doc is not None:
                close_write(tx, output_write_id(job_id, obj), doc["owner"], prior["destination"], probe)
            if prior is None or prior["outcome"] == "failed" or not prior.get("destination"):
                return False
            if prior.get("written"):
                return True
            kept = doc is None or self._settle_output(tx, Job.from_doc(doc), prior, finished)
            tx.put(IMAGES, f"{job_id}/{obj}", {**prior, "written": True} if kept else _unwritten(prior, JOB_ENDED))
            return kept

        return self._transact(work)

    @staticmethod
    def _settle_output(tx: Tx, job: Job, prior: Doc, finished: list[Job], unwritten: int = 0) -> bool:
        """One output of `job` is settled (in place, or `unwritten`): on its shard, or on the job's document.
        False when its shard closed before the image counted there (the close refunded it)."""
        if job.shards:
            shard = job_shards.read_shard(tx, job, prior["object"])
            if prior.get(job_shards.SETTLE_COUNTS) and shard.closed:
                return False
            shard.counts.not_written += unwritten
            completed = count(shard.counts, ImageOutcome(prior["object"], prior["outcome"])) \
                if prior.get(job_shards.SETTLE_COUNTS) else output_settled(shard.counts)  # else counted when recorded
            closed = job_shards.put_shard(tx, job, shard, completed)
            finished.extend([closed] if closed else [])
            return True
        job.not_written += unwritten
        if output_settled(job):
            finished.append(job)
        tx.put(JOBS, job.id, job.doc())
        return True

    def touch_job(self, job_id: str) -> Job | None:
        """Mark an unfinished job as moving now (re-driven), so the sweeper gives it a full JOB_STALL_SECONDS."""

        def work(tx: Tx) -> Job | None:
            doc = tx.get(JOBS, job_id)
            if doc is None or Job.from_doc(doc).finished:
                return None
            job = Job.from_doc(doc)
            job.updated = time.time()
            tx.put(JOBS, job_id, job.doc())
            return job

        return self.docs.transact(work)

    def unfinished_jobs(self, limit: int = 500) -> list[Job]:
        return [job_shards.with_progress(self.docs, Job.from_doc(doc)) for status in ("queued", "running")
                for _, doc in self.docs.find(JOBS, "status", status, limit)]

    def set_job_status(self, job_id: str, status: str) -> None:
        def work(tx: Tx) -> None:
            doc = tx.get(JOBS, job_id)
            if doc is None:
                raise unknown_job(job_id)
            tx.put(JOBS, job_id, {**doc, "status": status})

        self.docs.transact(work)
