"""The embedded queue: a background thread pool POSTs each message as a CloudEvent to the worker."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common.eventpost import post_event

log = logging.getLogger("imageclassify.queue")


class LocalQueue:
    """Delivers in the background with retries; enough for one laptop, not durable across restarts."""

    def __init__(self, url: str, workers: int = 4, attempts: int = 8) -> None:
        self.url, self.attempts = url, attempts
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local-queue")

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        for message in messages:
            self.pool.submit(self._deliver, json.dumps(message).encode())

    def _deliver(self, body: bytes) -> None:
        delay = 0.2
        for attempt in range(1, self.attempts + 1):
            try:
                status = post_event(self.url, body)
                if 200 <= status < 300:
                    return
                log.warning("worker answered %s (attempt %d)", status, attempt)
            except Exception as exc:  # noqa: BLE001 - keep retrying whatever the failure
                log.warning("delivery failed (attempt %d): %s", attempt, exc)
            time.sleep(delay)
            delay = min(delay * 2, 10)
        log.error("giving up on a message after %d attempts: %s", self.attempts, body[:200])
