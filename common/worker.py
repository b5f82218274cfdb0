"""One queue, one worker: route each message to the work it names.

Sort jobs and training runs share the queue port and its worker target
(`sort_worker`, and `sort_dead_letter` for messages that exhausted their
deliveries): a message with a training `kind` (`embed`, `fit`) goes to
`common.training_worker`, any other to `common.sorting` (one image of a job).
"""

from __future__ import annotations

from typing import Any

from common import logs, messages, sorting

# common.training_worker is imported only for training messages: it brings numpy, which the other targets of the
# sort_job function folder (sort_job, sweeper, the dead-letter handler for images) never need at cold start


def _training(message: Any) -> bool:
    return isinstance(message, dict) and message.get("kind") in messages.TRAINING_KINDS


def handle(message: Any) -> bool:
    if _training(message):
        from common import training_worker

        return training_worker.handle(message)
    return sorting.handle_image(message)


def handle_dead_letter(message: Any) -> bool:
    logs.dead_letter("training" if _training(message) else "image", message)  # `event: "dead_letter"`, WARNING
    if _training(message):
        from common import training_worker

        return training_worker.handle_dead_letter(message)
    return sorting.handle_dead_letter(message)
