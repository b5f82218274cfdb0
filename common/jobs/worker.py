"""One queue, one worker: route each message to the work it names.

Sort jobs and training runs share the queue port and its worker target
(`sort_worker`, and `sort_dead_letter` for messages that exhausted their
deliveries): a message with a training `kind` (`embed`, `fit`) goes to
`common.training.worker`, any other to `common.jobs.sorting` (one image of a job).

The embedded queue may deliver several first deliveries of images in one event
(`{"batch": [...]}`, `common.adapters.queue.local`): they are sorted side by
side, two per interpreter of the model's pool, so one image is read and decoded
while others infer and every core stays busy; the event succeeds only when
every image did, and a failure is raised after all were tried (the queue then
retries each on its own; those done meanwhile change nothing when delivered
again). Each message of a batch is checked as if it came alone.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from common.accounts import deliveries
from common.adapters.deps import Deps
from common.adapters.eventpost import BATCH, MAX_BATCH
from common.core import logs, parallel, signing
from common.core.config import Settings
from common.jobs import sorting
from common.records import messages

log = logging.getLogger("imageclassify.worker")
# common.training.worker is imported only for training messages: it brings numpy, which the other targets of the
# sort_job function folder (sort_job, sweeper, the dead-letter handler for images) never need at cold start


def _training(message: Any) -> bool:
    return isinstance(message, dict) and message.get("kind") in messages.TRAINING_KINDS


def handle(message: Any, deps: Deps) -> bool:
    """Do what a queue message (or a batch of them) asks; True when something new was done."""
    if isinstance(message, dict) and isinstance(message.get(BATCH), list) and len(message) == 1:
        return _batch(message[BATCH], deps)
    if deliveries.is_delivery(message):  # a webhook's delivery: its own message, never a job's finishing path
        return deliveries.handle(message, deps)
    if _training(message):
        from common.training import worker as training_worker

        return training_worker.handle(message, deps)
    return sorting.handle_image(message, deps)


def _batch(batch: list[Any], deps: Deps) -> bool:
    if len(batch) > MAX_BATCH:  # the embedded queue never sends one: acknowledged and dropped
        log.error("dropping a batch of %d messages (at most %d)", len(batch), MAX_BATCH)
        return False
    logs.annotate(messages=len(batch))  # the event's line counts the messages it carried
    event = contextvars.copy_context()  # each image's lines and tokens go on the event's line, as if alone

    def one(message: Any) -> bool | Exception:
        if isinstance(message, dict) and BATCH in message:  # never nested
            return False
        try:
            return event.copy().run(handle, message, deps)
        except Exception as exc:  # noqa: BLE001 - raised below, once the others are done
            return exc

    threads = batch_threads(deps.settings)
    done = list(parallel.ordered_map(one, batch, threads, parallel.shared(threads)))
    failure = next((outcome for outcome in done if isinstance(outcome, Exception)), None)
    if failure is not None:
        raise failure
    return any(done)


def batch_threads(settings: Settings) -> int:
    """The threads a batch's images are sorted on: two per interpreter, so one is read and decoded while the other
    infers."""
    return 2 * settings.models.model_interpreters


def _ours(message: Any) -> bool:
    """A message we signed, shaped as one of ours: only those are dead letters (the alert counts them)."""
    if not isinstance(message, dict) or not signing.verified(message):
        return False
    if _training(message):
        return all(isinstance(message.get(k), str) for k in ("owner", "name", "version"))
    return isinstance(message.get("job_id"), str) and isinstance(message.get("object"), str)


def handle_dead_letter(message: Any, deps: Deps) -> bool:
    if not _ours(message):
        logs.refused_dead_letter(message)  # `event: "dead_letter_refused"`: junk must not raise the alert
        return False
    logs.dead_letter("training" if _training(message) else "image", message)  # `event: "dead_letter"`, WARNING
    if _training(message):
        from common.training import worker as training_worker

        return training_worker.handle_dead_letter(message, deps)
    return sorting.handle_dead_letter(message, deps)
