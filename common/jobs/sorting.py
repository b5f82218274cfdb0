"""The queue worker's work: sort one image of a job into its class folder, exactly once in effect.

Classify the object, score the job's classes by WordNet ancestry, record the
outcome (with the bytes its output adds to the owner's space), then copy the
object to `<class>/<its path in the space>` or `unmatched/<its path>` there:
two source objects never share an output, whichever jobs sort them, and one
object always goes to the same place. Recording is idempotent (one record per
image) and a copy finds its own bytes in place on a redelivery, so a
redelivered message changes nothing. An output is never written over a
different file: a file of the owner's in its way (or a source deleted since)
leaves the output unwritten and reports it on the job (`not_written`); the
image was classified, so it stays charged. A dead letter for an image never
classified is failed and refunded. An image counts in its job's progress once
its output is settled (written or left unwritten): a job cancelled or swept
between the record and the copy refunded the image, so the store refuses its
output and the copy made is deleted.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from common.adapters.deps import Deps
from common.core import errors, signing
from common.files import service as files
from common.files import spaces
from common.records.jobs import output_write_id
from common.records.records import ImageOutcome, Job

log = logging.getLogger("imageclassify.sorting")


def _job_and_object(message: Any, deps: Deps) -> tuple[Job, str] | None:
    """The job and object a message names, when we signed it and the object lies in the job's source (in its
    owner's space); otherwise None and the message is acknowledged and dropped."""
    if not isinstance(message, dict) or not signing.verified(message) \
            or not isinstance(message.get("job_id"), str) or not isinstance(message.get("object"), str):
        log.error("dropping a job message that is malformed or not signed by us")
        return None
    job = deps.store.job_header(message["job_id"])
    if job is None or not message["object"].startswith(source_prefix(job)):
        log.warning("dropping a message for a job that is gone, or an object outside its source")
        return None
    return job, message["object"]


def source_prefix(job: Job) -> str:
    return spaces.space(job.owner) + job.source


def handle_image(message: Any, deps: Deps) -> bool:
    """Sort one image of a job; False when there was nothing to do."""
    named = _job_and_object(message, deps)
    if named is None:
        return False
    (job, key), store = named, deps.store
    recorded, new = store.image_record(job.id, key), False
    if recorded is None and job.finished:  # cancelled or closed meanwhile: nothing to classify or charge
        return False
    if recorded is None:  # not classified yet; a redelivery of a classified image only finishes its copy
        recorded, new = _classify(job, key, deps)
    if recorded is not None and recorded.awaiting_copy:
        _place(job, key, str(recorded.destination), deps)
    return new


def _classify(job: Job, key: str, deps: Deps) -> tuple[ImageOutcome | None, bool]:
    """Classify an image and record its outcome (with the bytes its output adds to the owner's space).
    Recorded first, copied after: a job cancelled meanwhile gets no file, and a crash between the two is
    mended by the redelivery, which finds the record and copies."""
    from common.models.model import best_class
    from common.models.registry import by_reference

    store, storage = deps.store, deps.storage
    try:  # a custom model deleted since the job began: its images fail (and are refunded) like unreadable ones
        model = by_reference(job.model, deps)
        data = storage.read(key, deps.settings.storage.image_max_bytes)
        probs = model.predict(data)
    except (*errors.BAD_IMAGE, errors.NotFound) as exc:
        return store.record_image_once(job.id, ImageOutcome(key, "failed", detail=exc.message))
    chosen = best_class(model.class_scores(probs, job.classes), job.min_score) or "unmatched"
    destination = output_key(job.owner, chosen, key)
    usage = (len(data), 1)  # at most what its output adds, reserved when it is recorded (common/records/usage.py)
    outcome = ImageOutcome(key, chosen, destination, usage=usage)
    return store.record_image_once(job.id, outcome, files.sizer(deps.storage))


def output_key(owner: str, folder: str, key: str) -> str:
    """Where a sorted object goes: `<folder>/<its path in its owner's space>`, one place per source object."""
    space = spaces.space(owner)
    return f"{space}{folder}/{key[len(space):]}"


def copy_unless_taken(source: str, destination: str, shown: str, deps: Deps) -> bool:
    """Copy `source` to `destination` unless a file is there already: True when this call copied. The same
    bytes in place (an earlier delivery's copy) are fine; a different file is a 409 and is left as it is.
    `shown` is the destination as its owner names it."""
    storage, limit = deps.storage, deps.settings.storage.image_max_bytes
    there = storage.stat(destination)
    if there is None:
        storage.copy(source, destination)
        return True
    ours = storage.stat(source)
    if ours is None:
        raise errors.NotFound(f"{shown!r} was not written: its source was deleted.", code="source_gone")
    if ours.size != there.size or storage.read(source, limit) != storage.read(destination, limit):
        raise errors.Conflict(f"{shown!r} was not written: a different file of yours is there, and it was left as "
                              "it is. Move it and sort again to get this output.", code="output_taken")
    return False


def _place(job: Job, key: str, destination: str, deps: Deps) -> None:
    """Copy a classified image to its class folder (again, harmlessly, after a crash). A copy that cannot be
    made (the source deleted since, a file of the owner's in the way) leaves the output unwritten: reported on
    the job, still charged (the image was classified)."""
    store, storage = deps.store, deps.storage
    try:
        copied = copy_unless_taken(key, destination, destination[len(spaces.space(job.owner)):], deps)
    except (errors.NotFound, errors.Conflict) as exc:
        log.info("job %s: an output was not written: %s", job.id, exc.message)
        store.keep_unwritten(job.id, key, exc.message, files.sizer(deps.storage))
        return
    written = store.mark_written(job.id, key, files.sizer(deps.storage))
    if not written and copied:  # failed meanwhile, or refunded by the job's end: not the job's file
        with contextlib.suppress(errors.NotFound):
            storage.delete(destination)
        store.close_space_write(output_write_id(job.id, key), job.owner, destination, files.sizer(deps.storage))


def handle_dead_letter(message: Any, deps: Deps) -> bool:
    """A message that exhausted its deliveries: count its image failed and refund its token, so the job ends.
    An image classified already gets its copy tried once more here, and is failed only if it cannot be made."""
    named = _job_and_object(message, deps)
    if named is None:
        return False
    (job, key), store = named, deps.store
    detail = "The image could not be processed after several attempts."
    recorded, new = store.record_image_once(job.id, ImageOutcome(key, "failed", detail=detail))
    if not new and recorded is not None and recorded.awaiting_copy:
        _place(job, key, str(recorded.destination), deps)
    return new
