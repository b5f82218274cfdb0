"""A sort job's progress in counters sharded by image, so that no document is written at the job's image rate.

- At creation the job's images are spread over `shards` counters (an image's shard is a hash of its key; the
  count grows with the job's size), and the job's document keeps how many images each shard expects.
- An image counts in its own shard once, in the commit that settles it: a failed one when it is recorded, a
  classified one when its output is written or left unwritten (its record only reads the shard, to refuse a
  closed one). A shard thus takes one write per image, and the job's document is only read, so the workers of
  one job do not contend on it.
- A shard is complete when each of its images is settled. Completions are counted on two levels of closers, so
  that no closer takes every shard's write in the job's last second (equal shards complete together): the image
  that completes a shard adds one to its group's closer (`GROUP` consecutive shards), the one that completes a
  group adds one to the job's top closer in the same commit, and the one that completes the last group sums the
  shards into the job's document and marks it done: a cost per job, not per image. A shard with no image to
  expect, and a group of such shards, are complete from the start. A job planned before the groups
  (`closer_groups` 0) counts its shards on its single closer.
- A job's end (cancel, sweeper) closes its shards and refunds what they did not count; an image recorded but
  not settled by then counts nowhere, so its output is not the job's (`jobs.mark_written` refuses it).
- Progress is the sum of the shards, read when asked: an image shows once settled, exact once done.
- Failed images are refunded when the job ends, in one refund for the job (`finish_refund_id`).
- An image record written before this design lacks `SETTLE_COUNTS`: it counted on its shard when recorded
  (its output in the shard's `writing`) and settles as it did, releasing `writing` only.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass

from common.records.ledger import apply_refund
from common.records.port import Doc, DocumentStore, Tx
from common.records.records import Job

SHARDS, CLOSERS = "job_shards", "job_closers"
SETTLE_COUNTS = "counts_when_settled"  # an image record's flag: it counts on its shard once settled, not before
IMAGES_PER_SHARD = 40  # a shard takes about this many images: its write rate is the job's divided by the count
MAX_SHARDS = 80  # the closing commit reads each shard: well within a commit's limits (DynamoDB: 100 items)
GROUP = 8  # shards counted on one group closer: it takes this many writes per job, the top closer one per group


def shard_count(total: int) -> int:
    return max(1, min(MAX_SHARDS, -(-total // IMAGES_PER_SHARD)))


def shard_of(job: Job, key: str) -> int:
    """The shard an image counts in, from its key alone: by its CRC-32, in the ranges `plan` drew so that every
    shard takes the same share of the job's images (a hash modulo the count leaves some shards well above the
    mean, and the busiest shard is the one that meets the per-document limit first). Jobs planned before the
    ranges: the CRC modulo the count."""
    crc = zlib.crc32(key.encode())
    return bisect.bisect_right(job.shard_bounds, crc) if job.shard_bounds else crc % job.shards


def finish_refund_id(job_id: str) -> str:
    return f"{job_id}:finish"


def unclassified(job: Job) -> int:
    """The tokens a sharded job gives back when it ends: one per image of its total not classified (failed or
    never processed); images re-driven beyond its total were never charged."""
    return max(0, min(job.total, job.total - (job.processed - job.failed)))


def plan(job: Job, objects: list[str]) -> None:
    """Spread a new job's images over its shards."""
    job.shards = shard_count(len(objects))
    crcs = sorted(zlib.crc32(key.encode()) for key in objects)
    job.shard_bounds = [crcs[i * len(crcs) // job.shards] for i in range(1, job.shards)]  # equal shares
    job.shard_expected = [0] * job.shards
    for key in objects:
        job.shard_expected[shard_of(job, key)] += 1
    job.closer_groups = -(-job.shards // GROUP)


def closer_keys(job: Job) -> list[str]:
    """The keys of a job's closers: the top one, then its groups'."""
    return [job.id, *(f"{job.id}:g{g}" for g in range(job.closer_groups))]


def _shard_key(job_id: str, index: int) -> str:
    return f"{job_id}:{index}"


def _as_shard(job: Job, index: int, doc: Doc | None) -> Job:
    """A shard as a small job (the same counters and the same `done` rule) of the images it expects."""
    if doc is not None:
        return Job.from_doc(doc)
    return Job(id=job.id, owner=job.owner, classes=[], source="", min_score=0.0, total=job.shard_expected[index],
               created=job.created)


@dataclass
class Shard:
    index: int
    counts: Job  # its counters, as a small job of the images it expects
    counted: bool  # its completion is counted on the job's closer (an image re-driven into it later counts no more)
    closed: bool = False  # the job was ended (cancelled, swept): the shard records nothing more


def read_shard(tx: Tx, job: Job, key: str) -> Shard:
    """The shard the image at `key` counts in."""
    index = shard_of(job, key)
    doc = tx.get(SHARDS, _shard_key(job.id, index))
    return Shard(index, _as_shard(job, index, doc), bool(doc and doc.get("counted")), bool(doc and doc.get("closed")))


def put_shard(tx: Tx, job: Job, shard: Shard, completed: bool) -> Job | None:
    """Write a shard; when `completed` made it complete, count it on its closers (once) and, for the last one,
    close the job (the job returned, to be reported). A shard with no image to expect was counted from the start:
    an image re-driven into it completes nothing more."""
    closing = completed and not job.finished and not shard.counted and job.shard_expected[shard.index] > 0
    tx.put(SHARDS, _shard_key(job.id, shard.index),
           {**shard.counts.doc(), "job_id": job.id, "counted": shard.counted or closing, "closed": shard.closed})
    if not closing or not _all_complete(tx, job, shard.index):
        return None
    summed = sum_shards(tx, job, {shard.index: shard.counts})
    summed.end("done")
    apply_refund(tx, job.owner, job.spend_id, unclassified(summed), finish_refund_id(job.id))
    tx.put("jobs", job.id, summed.doc())
    return summed


def _all_complete(tx: Tx, job: Job, index: int) -> bool:
    """Count shard `index` complete on its closers: whether every shard of the job is now complete."""
    if not job.closer_groups:  # planned before the groups: every shard on the single closer
        return _count(tx, job.id, _empty(job, range(job.shards)), job.shards)
    keys = closer_keys(job)
    groups = [range(g * GROUP, min(job.shards, (g + 1) * GROUP)) for g in range(job.closer_groups)]
    group = groups[index // GROUP]
    if not _count(tx, keys[1 + index // GROUP], _empty(job, group), len(group)):
        return False
    return _count(tx, job.id, sum(1 for g in groups if _empty(job, g) == len(g)), job.closer_groups)


def _empty(job: Job, indexes: range) -> int:
    """How many of these shards expect no image (complete from the start)."""
    return sum(1 for i in indexes if job.shard_expected[i] == 0)


def _count(tx: Tx, key: str, initial: int, members: int) -> bool:
    """Add one to the closer at `key` (first written as `initial`): whether all its `members` are now complete."""
    closer = {"complete": (tx.get(CLOSERS, key) or {"complete": initial})["complete"] + 1}
    tx.put(CLOSERS, key, closer)
    return bool(closer["complete"] >= members)


def close_shards(tx: Tx, job: Job) -> Job:
    """End a job's shards (a cancel, the sweeper): each is written back closed, so a record racing the end either
    commits first and is summed here, or fails its guard and finds the shard closed (an adapter guards what a
    commit writes, not what it only read). The job with the shards' counters summed."""
    shards = []
    for i in range(job.shards):
        doc = tx.get(SHARDS, _shard_key(job.id, i))
        shards.append(_as_shard(job, i, doc))
        tx.put(SHARDS, _shard_key(job.id, i), {**(doc or {**shards[-1].doc(), "job_id": job.id}), "closed": True})
    return _summed(job, shards)


def sum_shards(tx: Tx, job: Job, known: dict[int, Job] | None = None) -> Job:
    """The job with its shards' counters summed (each shard read in `tx`, unless given in `known`)."""
    known = known or {}
    shards = [known.get(i) or _as_shard(job, i, tx.get(SHARDS, _shard_key(job.id, i))) for i in range(job.shards)]
    return _summed(job, shards)


def _summed(job: Job, shards: list[Job]) -> Job:
    out = Job.from_doc(job.doc())
    out.processed = sum(s.processed for s in shards)
    out.unmatched = sum(s.unmatched for s in shards)
    out.failed = sum(s.failed for s in shards)
    out.writing = sum(s.writing for s in shards)
    out.not_written = sum(s.not_written for s in shards)
    out.matched = {}
    for s in shards:
        for name, n in s.matched.items():
            out.matched[name] = out.matched.get(name, 0) + n
    out.updated = max([job.updated, *(s.updated for s in shards)])
    return out


def with_progress(docs: DocumentStore, job: Job) -> Job:
    """A job as read: a running job's counters summed from its shards (a finished one's were summed when it
    ended; only its outputs still landing are taken from the shards)."""
    if not job.shards:
        return job
    shards = [Job.from_doc(doc) for _, doc in docs.find(SHARDS, "job_id", job.id, job.shards + 1)]
    if job.finished:
        job.writing = sum(s.writing for s in shards)
        return job
    summed = _summed(job, shards)
    if summed.processed and summed.status == "queued":
        summed.status = "running"
    return summed

