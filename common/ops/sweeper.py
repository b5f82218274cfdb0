"""Close the books that nothing else will close: expired reservations and jobs whose messages are all gone.

Safe to run anywhere, at any time, any number of times at once: each step is
one of the store's exactly-once rules. The local stack runs it every
SWEEP_INTERVAL seconds; in the cloud Cloud Scheduler calls the `sweeper`
function.

- A reservation not settled within its lease (a request that died between
  reserving and replying) is refunded, once; its late settle changes nothing.
- A token lease past its expiry (its instance died) is closed: what its spend
  records do not cover goes back to the account, once.
- A job that is not finished and has not moved for JOB_STALL_SECONDS is
  closed: the images not processed are counted failed and refunded. With the
  embedded queue, a job with no message left is closed after a short grace.
- A write to a space whose writer died (an upload, a sort job's output) is
  closed after its lease: the usage counts what is stored.
- A custom model's training run that has not moved for JOB_STALL_SECONDS
  ends `failed`, and every token it has not refunded yet is refunded.
- A deleted account's data is purged (`common/ops/deletion.py`): the deletion
  the request started, or one a crash interrupted, finishes here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from common import bootstrap
from common.accounts import deliveries
from common.adapters.deps import Deps
from common.files.service import sizer
from common.ops import deletion

log = logging.getLogger("imageclassify.sweeper")
GRACE = 10.0  # seconds a job with no message left may still be recording its last image


def sweep(now: float | None = None, deps: Deps | None = None) -> dict[str, Any]:
    """One pass (`deps`: the process's own unless given); what it did."""
    now, deps = now or time.time(), deps or bootstrap.deps()
    store, stall = deps.store, deps.settings.jobs.job_stall_seconds
    refunded = store.expire_reservations(now)
    leases = store.close_expired_leases(now)  # a dead instance's token leases: what they did not spend goes back
    pending = getattr(deps.queue, "pending", None)
    closed = []
    for job in store.unfinished_jobs():
        idle = now - max(job.updated, job.created)
        orphaned = pending is not None and idle > GRACE and pending(job.id) == 0
        if idle > stall or orphaned:
            store.finish_job(job.id, "failed" if job.processed == 0 else "done",
                             "Some images were never processed; their tokens were refunded.")
            closed.append(job.id)
    models = [r.reference for r in store.stalled_models(now - stall)
              if store.fail_model(r.owner, r.name, r.version, "Training stalled and was stopped; every token was "
                                  "refunded. Delete the model and train it again.")]
    purged = store.purge_expired(now)
    webhooks = deliveries.publish_due(deps, now)  # retries due, and any not published after its commit
    # uploads and outputs whose writer died: counted as stored
    writes = store.close_expired_writes(sizer(deps.storage), now)
    deleted = deletion.purge_due(deps, now)
    if refunded or closed or models:
        log.warning("sweep: %d expired reservation(s) refunded, %d stalled job(s) and %d stalled training run(s) "
                    "closed", refunded, len(closed), len(models))
    return {"reservations_refunded": refunded, "leases_closed": leases, "jobs_closed": closed, "models_failed": models,
            "expired_records_deleted": purged, "space_writes_closed": writes, "accounts_purged": deleted,
            "webhooks_published": webhooks}
