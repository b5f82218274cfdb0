"""Sort jobs as the API sees them: validate, create (reserving one token per image), poll.

A job lists the images under a folder of the owner's space, reserves their
tokens in the same atomic write that stores the job, and publishes one message
per image; `common.jobs.sorting` handles each message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from common.accounts import webhooks
from common.adapters.deps import Deps
from common.adapters.storage.port import list_all
from common.core import bodies, errors
from common.files import spaces
from common.jobs.bodies import MAX_CLASSES, JobRequest
from common.models import classnames
from common.records import messages
from common.records.records import Account, Job, model_name

if TYPE_CHECKING:
    from common.models.vocabulary import Vocabulary

log = logging.getLogger("imageclassify.jobs")
MAX_IMAGES = 10_000


def validate_classes(classes: Any, model: Vocabulary) -> list[str]:
    """The job's classes, canonical; with a custom model they default to all its labels and must be its labels."""
    from common.models.vocabulary import Labels

    custom = isinstance(model, Labels)
    if custom and classes is None:
        classes = list(model.labels)
    if not isinstance(classes, list) or not classes:
        raise errors.BadRequest("classes must be a non-empty list of class names, e.g. [\"dog\", \"food\"].",
                                code="invalid_classes")
    limit = len(model.labels) if custom else MAX_CLASSES
    if len(classes) > limit:
        raise errors.BadRequest(f"At most {limit} classes per job ({len(classes)} given).",
                                code="invalid_classes")
    canonical = classnames.unique(classes)
    for name in canonical:
        model.resolve(name)  # unknown names are a 400 listing near matches
    return canonical


def validate_source(source: Any) -> str:
    """A folder of the caller's space, relative to it (`all/` is `users/<you>/all/`)."""
    folder = spaces.clean_path(source, folder=True, what="source")
    if not folder:
        raise errors.BadRequest("source must be a folder of your space, e.g. \"all/\".", code="invalid_source")
    return folder


def validate_model(account: Account, name: str | None, deps: Deps) -> tuple[str, Vocabulary]:
    """The model a job sorts with (the caller's own first, then the built-ins; None: the default): what the job
    records to find it again, and its class names. No interpreter starts here: only the sort worker infers."""
    from common.models.registry import vocabulary_of

    return vocabulary_of(account.username, name, deps)


def check_output_folders(owner: str, classes: list[str], source: str, deps: Deps) -> None:
    """Refuse a job whose output folders cannot be made (409, nothing charged): a file of the owner's named like
    a class folder, or like a folder on the way to the outputs (`cat/all` for `all/`). Every image sorted there
    would have no place to go; it would be charged for an answer whose file is never written."""
    storage, space, parts = deps.storage, spaces.space(owner), source.rstrip("/").split("/")
    for name in [*classes, "unmatched"]:
        for depth in range(len(parts) + 1):
            path = "/".join([name, *parts[:depth]])
            if storage.stat(space + path) is not None:
                raise errors.Conflict(f"{path!r} is a file in your space, where this job's folder {path}/ must go. "
                                      "Move or delete that file (or choose other classes), then start the job "
                                      "again; nothing was charged.", code="output_folder_taken")


def create_job(account: Account, body: Mapping[str, Any], deps: Deps) -> Job:
    """Validate the body (common/jobs/bodies.py), reserve one token per image and queue them."""
    request = bodies.convert(JobRequest, body)
    reference, model = validate_model(account, request.model, deps)
    classes = validate_classes(request.classes, model)
    source = validate_source(request.source)
    min_score = deps.settings.jobs.default_min_score if request.min_score is UNSET else request.min_score
    webhook = webhooks.check_url(request.webhook, deps.settings.fetch.fetch_allow_loopback)
    check_output_folders(account.username, classes, source, deps)
    objects = []
    for key in list_all(deps.storage, spaces.space(account.username) + source):
        objects.append(key)
        if len(objects) > MAX_IMAGES:
            raise errors.BadRequest(f"{source} holds more than {MAX_IMAGES} objects; sort a smaller folder.",
                                    code="too_many_images")
    now = time.time()
    job = Job(id=uuid.uuid4().hex, owner=account.username, classes=classes, source=source,
              min_score=float(min_score), total=len(objects), status="done" if not objects else "queued",
              created=now, ended=0.0 if objects else now, model=reference, webhook=webhook)
    deps.store.create_job(job, len(objects), f"{account.username}:job:{job.id}", objects, key_id=account.key_id)
    try:
        deps.queue.publish([messages.image(job.id, key) for key in objects])
    except Exception as exc:
        log.exception("publishing job %s failed", job.id)
        deps.store.finish_job(job.id, "failed", "The job could not be queued.")  # refunds every image
        raise errors.retry_later("The job could not be queued; no tokens were spent. Retry in a moment.", exc) from exc
    return job


def get_job(account: Account, job_id: str, deps: Deps) -> Job:
    """The caller's job; another user's job is a 404, exactly like a missing one."""
    job = deps.store.get_job(job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None or job.owner != account.username:
        raise errors.NotFound(f"There is no job {job_id[:80]!r} of yours.", code="unknown_job")
    return job


def cancel_job(account: Account, job_id: str, deps: Deps) -> Job:
    """Stop a job: images not yet sorted are refunded and their queued messages change nothing."""
    job = get_job(account, job_id, deps)
    return deps.store.finish_job(job.id, "cancelled") if not job.finished else job


def describe(job: Job) -> dict[str, Any]:
    """A job as the API answers it (POST /jobs, GET /jobs/<id>): its progress, what it sorts and how."""
    percentage = 100.0 if job.total == 0 else round(100.0 * job.processed / job.total, 1)
    return {
        "id": job.id,
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "matched": {c: job.matched.get(c, 0) for c in job.classes},
        "unmatched": job.unmatched,
        "failed": job.failed,
        "not_written": job.not_written,
        "percentage": percentage,
        "classes": job.classes,
        "source": job.source,
        "min_score": job.min_score,
        "model": model_name(job.model),
        "created": job.created,
        **({"ended": job.ended} if job.ended else {}),
        **({"error": job.error} if job.error else {}),
        **({"webhook": job.webhook} if job.webhook else {}),
    }


