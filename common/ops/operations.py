"""What an operator does about work that is not finishing: list it, re-drive it (`python -m common.ops.admin`).

Re-driving publishes again the messages of the work not yet recorded, signed
like the originals. It is always safe: every record is idempotent, so a message
that was only slow, and now arrives twice, changes nothing.

- A sort job: one message per image of its source that has no record yet, at
  most as many as the job still misses (the job was charged for `total` images
  when it was created; its source is listed again, since the job keeps no list),
  and one per image classified whose output is not in place yet (its worker
  only copies it).
- A training run (`owner/name`): an embed message per chunk not yet in; while
  the run is `training`, the fit message.

Either is marked as moving, so the sweeper gives it another JOB_STALL_SECONDS.
"""

from __future__ import annotations

import os
import time
from typing import Any

from common.adapters.backends import local_queue
from common.adapters.deps import Deps
from common.adapters.queue.port import Queue
from common.adapters.storage.port import list_all
from common.core import errors
from common.core.config import settings
from common.files import spaces
from common.records import messages
from common.records.records import Job, ModelRecord


def _pending(work_id: str, deps: Deps) -> int | None:
    """Messages still queued for a job (the embedded queue knows; Pub/Sub and SQS do not say)."""
    pending = getattr(deps.queue, "pending", None)
    return int(pending(work_id)) if pending is not None else None


def unfinished(deps: Deps, now: float | None = None) -> list[dict[str, Any]]:
    """Every job and training run not in a final state, oldest first."""
    now, store = now or time.time(), deps.store
    rows = [_job_row(job, now, deps) for job in store.unfinished_jobs()]
    rows += [_model_row(record, now) for record in store.active_models()]
    return sorted(rows, key=lambda row: -row["age_seconds"])


def stuck(min_idle: float, deps: Deps, now: float | None = None) -> list[dict[str, Any]]:
    """The unfinished work that has not moved for `min_idle` seconds (what a re-drive is for), oldest first."""
    return [row for row in unfinished(deps, now) if row["idle_seconds"] >= min_idle]


def failed(deps: Deps, limit: int = 100, now: float | None = None) -> list[dict[str, Any]]:
    """The jobs and training runs that ended failed, most recently moved first (at most `limit` of each)."""
    now, store = now or time.time(), deps.store
    rows = [_job_row(job, now, deps) for job in store.failed_jobs(limit)]
    rows += [_model_row(record, now) for record in store.failed_models(limit)]
    return sorted(rows, key=lambda row: row["idle_seconds"])


def _row(kind: str, work_id: str, owner: str, status: str, done: int, total: int, created: float,
         updated: float, now: float) -> dict[str, Any]:
    return {"kind": kind, "id": work_id, "owner": owner, "status": status, "done": done, "total": total,
            "percentage": round(100.0 * done / total, 1) if total else 100.0,
            "age_seconds": round(now - created, 1), "idle_seconds": round(now - max(created, updated), 1)}


def _job_row(job: Job, now: float, deps: Deps) -> dict[str, Any]:
    row = _row("job", job.id, job.owner, job.status, job.processed, job.total, job.created, job.updated, now)
    return {**row, "queued": _pending(job.id, deps)}


def _model_row(record: ModelRecord, now: float) -> dict[str, Any]:
    return _row("training", f"{record.owner}/{record.name}", record.owner, record.status, record.done,
                record.images, record.created, record.updated, now)


def _publisher(deps: Deps) -> Queue:
    """The configured queue; the embedded one only stores the messages (the running stack delivers them: this
    process exits at once, and would otherwise hold leases on what it began to deliver)."""
    return local_queue(deliver=False) if deps.settings.queue.queue_backend == "local" else deps.queue


def redrive(work_id: str, deps: Deps) -> dict[str, Any]:
    """Re-publish what a job (by id) or a training run (`owner/name`) still misses; what was published."""
    if "/" in work_id:
        owner, _, name = work_id.partition("/")
        return redrive_training(owner, name, deps)
    return redrive_job(work_id, deps)


def redrive_job(job_id: str, deps: Deps) -> dict[str, Any]:
    store = deps.store
    job = store.get_job(job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None:
        raise errors.NotFound(f"There is no job {job_id[:80]!r}.", code="unknown_job")
    if job.finished:
        raise errors.Conflict(f"Job {job.id} is {job.status} already; there is nothing to re-drive.")
    recorded = store.job_images(job.id)
    skip = {o.object for o in recorded} | {o.destination for o in recorded if o.destination}
    prefix = spaces.space(job.owner) + job.source
    # at most the images not recorded yet (a sharded job's `processed` leaves out those whose copy is pending)
    missing = [key for key in list_all(deps.storage, prefix) if key not in skip][:max(0, job.total - len(recorded))]
    missing += [o.object for o in recorded if o.awaiting_copy]
    store.touch_job(job.id)
    _publisher(deps).publish([messages.image(job.id, key) for key in missing])
    return {"kind": "job", "id": job.id, "status": job.status, "published": len(missing)}


def redrive_training(owner: str, name: str, deps: Deps) -> dict[str, Any]:
    store = deps.store
    record = store.get_model_record(owner, name)
    if record is None:
        raise errors.NotFound(f"There is no model {owner[:64]}/{name[:64]}.", code="unknown_model")
    if record.status not in ModelRecord.ACTIVE:
        raise errors.Conflict(f"Model {record.owner}/{record.name} is {record.status} already; there is nothing to "
                              "re-drive.")
    if record.status == "training":
        missing = [messages.training(record, "fit")]
    else:
        missing = [messages.training(record, "embed", chunk=chunk) for chunk in range(record.chunks)
                   if not store.chunk_recorded(record, chunk)]
    store.touch_model(record.owner, record.name)
    _publisher(deps).publish(missing)
    return {"kind": "training", "id": f"{record.owner}/{record.name}", "status": record.status,
            "published": len(missing)}


def local_secret() -> None:
    """Sign as the local stack does: with no INTERNAL_SECRET set, use the one it keeps in its data folder."""
    path = settings().data_dir / "internal.key"
    if not os.environ.get("INTERNAL_SECRET") and path.is_file():
        os.environ["INTERNAL_SECRET"] = path.read_text().strip()
        settings.cache_clear()
