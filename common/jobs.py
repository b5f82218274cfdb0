"""Sort jobs as the API sees them: validate, create (reserving one token per image), poll.

A job lists the images under a folder of the owner's space, reserves their
tokens in the same atomic write that stores the job, and publishes one message
per image; `common.sorting` handles each message.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from common import errors
from common.backends import get_queue, get_storage, get_store
from common.config import settings
from common.storage.port import list_all
from common.store.records import Account, ImageOutcome, Job

log = logging.getLogger("imageclassify.jobs")
MAX_CLASSES = 20
MAX_IMAGES = 10_000


def validate_classes(classes: Any) -> list[str]:
    from common.model import get_model

    if not isinstance(classes, list) or not classes:
        raise errors.BadRequest("classes must be a non-empty list of class names, e.g. [\"dog\", \"food\"].",
                                code="invalid_classes")
    if len(classes) > MAX_CLASSES:
        raise errors.BadRequest(f"At most {MAX_CLASSES} classes per job ({len(classes)} given).",
                                code="invalid_classes")
    model = get_model()
    for name in classes:
        if not isinstance(name, str) or not name.strip():
            raise errors.BadRequest(f"Class {name!r} must be a non-empty string.", code="invalid_class")
        if "/" in name or "\\" in name or ".." in name or len(name) > 64 or name.strip() in ("unmatched",):
            raise errors.BadRequest(f"Class {name[:80]!r} is not allowed: at most 64 characters, no '/', "
                                    "no '..', and not 'unmatched'.", code="invalid_class")
        model.resolve(name)  # unknown names are a 400 listing near matches
    if len({c.strip().lower() for c in classes}) != len(classes):
        raise errors.BadRequest("Each class may be named only once.", code="invalid_classes")
    return [c.strip() for c in classes]


def validate_source(source: Any) -> str:
    if not isinstance(source, str) or not source.strip("/ "):
        raise errors.BadRequest("source must be a folder in the bucket, e.g. \"all/\".", code="invalid_source")
    source = source.strip().lstrip("/")
    if not source.endswith("/"):
        source += "/"
    if any(part in (".", "..") for part in source.split("/")) or "\\" in source or "\x00" in source:
        raise errors.BadRequest("source must not contain '.' or '..' segments.", code="invalid_source")
    return source


def create_job(account: Account, body: dict[str, Any]) -> Job:
    classes = validate_classes(body.get("classes"))
    source = validate_source(body.get("source", "all/"))
    min_score = body.get("min_score", settings().default_min_score)
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
        raise errors.BadRequest("min_score must be a number from 0 to 1.", code="invalid_min_score")
    objects = []
    for key in list_all(get_storage(), source):
        objects.append(key)
        if len(objects) > MAX_IMAGES:
            raise errors.BadRequest(f"{source} holds more than {MAX_IMAGES} objects; sort a smaller folder.",
                                    code="too_many_images")
    job = Job(id=uuid.uuid4().hex, owner=account.username, classes=classes, source=source,
              min_score=float(min_score), total=len(objects), status="done" if not objects else "queued",
              created=time.time())
    get_store().create_job(job, len(objects), f"{account.username}:job:{job.id}")
    try:
        get_queue().publish([{"job_id": job.id, "object": key} for key in objects])
    except Exception as exc:
        log.exception("publishing job %s failed", job.id)
        for key in objects:  # nothing will run: count every image failed, which refunds its token
            get_store().record_image(job.id, ImageOutcome(key, "failed", detail="could not be queued"))
        get_store().set_job_status(job.id, "failed")
        raise errors.Unavailable("The job could not be queued; no tokens were spent. Retry in a moment.") from exc
    return job


def get_job(account: Account, job_id: str) -> Job:
    job = get_store().get_job(job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None or (job.owner != account.username and not account.is_admin):
        raise errors.NotFound(f"There is no job {job_id[:80]!r} of yours.", code="unknown_job")
    return job
