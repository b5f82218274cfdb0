"""The queue worker's work: sort one image of a job into its class folder, exactly once in effect.

Classify the object, score the job's classes by WordNet ancestry, copy the
object to `<class>/<path>` or `unmatched/<path>` in the owner's space, then
record the outcome. Recording is idempotent (one record per image) and copying
the same bytes to the same place again is harmless, so a redelivered message
changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from common import errors
from common.backends import get_storage, get_store
from common.config import settings
from common.store.records import ImageOutcome

log = logging.getLogger("imageclassify.sorting")


def handle_image(message: Any) -> bool:
    """Sort one image of a job; False when it was already recorded (a redelivery) or the job is gone."""
    from common.model import best_class, get_model
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
