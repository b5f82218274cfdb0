"""One queue, one worker: route each message to the work it names.

Sort jobs and training runs share the queue port and its worker target
(`sort_worker`, and `sort_dead_letter` for messages that exhausted their
deliveries): a message with a training `kind` (`embed`, `fit`) goes to
`common.training.worker`, any other to `common.jobs.sorting` (one image of a job).
"""

from __future__ import annotations

from typing import Any

from common.accounts import deliveries
from common.core import logs, signing
from common.jobs import sorting
from common.records import messages

# common.training.worker is imported only for training messages: it brings numpy, which the other targets of the
# sort_job function folder (sort_job, sweeper, the dead-letter handler for images) never need at cold start


def _training(message: Any) -> bool:
    return isinstance(message, dict) and message.get("kind") in messages.TRAINING_KINDS


def handle(message: Any) -> bool:
    if deliveries.is_delivery(message):  # a webhook's delivery: its own message, never a job's finishing path
        return deliveries.handle(message, deliveries.process_deps())
    if _training(message):
        from common.training import worker as training_worker

        return training_worker.handle(message)
    return sorting.handle_image(message)


def _ours(message: Any) -> bool:
    """A message we signed, shaped as one of ours: only those are dead letters (the alert counts them)."""
    if not isinstance(message, dict) or not signing.verified(message):
        return False
    if _training(message):
        return all(isinstance(message.get(k), str) for k in ("owner", "name", "version"))
    return isinstance(message.get("job_id"), str) and isinstance(message.get("object"), str)


def handle_dead_letter(message: Any) -> bool:
    if not _ours(message):
        logs.refused_dead_letter(message)  # `event: "dead_letter_refused"`: junk must not raise the alert
        return False
    logs.dead_letter("training" if _training(message) else "image", message)  # `event: "dead_letter"`, WARNING
    if _training(message):
        from common.training import worker as training_worker

        return training_worker.handle_dead_letter(message)
    return sorting.handle_dead_letter(message)
