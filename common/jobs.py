"""Sort jobs and upload labelling: what `sort_job`, `sort_worker` and `on_upload` do.

A job lists the images under a bucket prefix, reserves one token per image in
the same atomic write that stores the job, and publishes one message per
image. The worker handles one image: classify, score the job's classes by
WordNet ancestry, copy the object into `<class>/<path>` or `unmatched/<path>`,
then record the outcome. Recording is idempotent (one record per image), so a
redelivered message changes nothing; a failed image is counted as failed and
its token refunded in the same write.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

from common import errors
from common.config import settings
from common.store import Account, ImageOutcome, Job, get_store

log = logging.getLogger("imageclassify.jobs")
MAX_CLASSES = 20
MAX_IMAGES = 10_000
PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"


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
    from common.jobqueue import get_queue
    from common.storage import get_storage, list_all

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


# -- events ----------------------------------------------------------------------------


def event_data(event: Any) -> tuple[Any, dict[str, str]]:
    """The payload of a CloudEvent and its attributes, unwrapping a Pub/Sub message."""
    data = event.get_data() if hasattr(event, "get_data") else event.data
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError:
            raise errors.BadRequest("The event data is not JSON.") from None
    if event["type"] == PUBSUB_TYPE and isinstance(data, dict) and "message" in data:
        message = data["message"]
        try:
            raw = base64.b64decode(message.get("data", ""))
            return (json.loads(raw) if raw else {}), dict(message.get("attributes") or {})
        except (binascii.Error, ValueError):
            raise errors.BadRequest("The Pub/Sub message data is not base64 JSON.") from None
    return data, {}


def handle_image(message: Any) -> bool:
    """Sort one image of a job; False when it was already recorded (a redelivery) or the job is gone."""
    from common.model import best_class, get_model
    from common.storage import get_storage

    if not isinstance(message, dict) or not isinstance(message.get("job_id"), str) \
            or not isinstance(message.get("object"), str):
        log.error("dropping a malformed job message: %r", message)
        return False
    store, storage = get_store(), get_storage()
    job = store.get_job(message["job_id"])
    if job is None:
        log.error("dropping a message for unknown job %s", message["job_id"])
        return False
    key = message["object"]
    model = get_model()
    relative = key[len(job.source):] if key.startswith(job.source) else key.rsplit("/", 1)[-1]
    try:
        probs = model.predict(storage.read(key, settings().max_body_bytes))
    except (*errors.BAD_IMAGE, errors.NotFound) as exc:
        return store.record_image(job.id, ImageOutcome(key, "failed", detail=exc.message))
    chosen = best_class(model.class_scores(probs, job.classes), job.min_score)
    destination = f"{chosen or 'unmatched'}/{relative}"
    storage.copy(key, destination)  # copying again on a redelivery is harmless
    return store.record_image(job.id, ImageOutcome(key, chosen or "unmatched", destination))


def uploaded_objects(event: Any) -> list[tuple[str, str]]:
    """(bucket, key) of each new object an upload event announces: GCS, GCS through Pub/Sub, or S3."""
    data, attributes = event_data(event)
    if attributes:  # a GCS notification delivered through Pub/Sub
        if attributes.get("eventType") != "OBJECT_FINALIZE":
            return []
        return [(attributes.get("bucketId", data.get("bucket", "")), attributes.get("objectId", data.get("name", "")))]
    if isinstance(data, dict) and "Records" in data:  # S3 event notification (keys URL-encoded)
        return [(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
                for r in data["Records"] if str(r.get("eventName", "")).startswith("ObjectCreated")]
    if isinstance(data, dict) and "name" in data and "bucket" in data:  # GCS CloudEvent / local watcher
        return [(data["bucket"], data["name"])]
    return []


def label_upload(bucket: str, key: str) -> dict[str, Any] | None:
    """Classify a new upload under the watched prefix; write labels/<key>.json; auto-sort if configured."""
    from common.model import best_class, get_model
    from common.storage import get_storage

    s = settings()
    storage = get_storage()
    if bucket != storage.bucket or not key.startswith(s.watch_prefix) or key.endswith("/"):
        return None  # outside the watched prefix: our own outputs land here and must not re-trigger
    model = get_model()
    result: dict[str, Any] = {"object": key, "model": model.name}
    try:
        probs = model.predict(storage.read(key, s.max_body_bytes))
    except errors.BAD_IMAGE as exc:
        result["error"] = exc.body()["error"]
    except errors.NotFound:
        return None  # deleted before we got to it
    else:
        result["predictions"] = model.top(probs, 5)
        if s.autosort_classes:
            scores = model.class_scores(probs, s.autosort_classes)
            chosen = best_class(scores, s.default_min_score)
            result["class_scores"] = {c: round(v, 5) for c, v in scores.items()}
            result["class"] = chosen or "unmatched"
            storage.copy(key, f"{result['class']}/{key[len(s.watch_prefix):]}")
    storage.write(f"{s.labels_prefix}{key}.json", json.dumps(result, indent=1).encode(), "application/json")
    return result
