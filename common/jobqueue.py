"""The queue port: publish many messages, each delivered (at least once) to the `sort_worker` function.

Adapters: local (the embedded default: a background thread pool POSTs each
message as a CloudEvent to WORKER_URL, retrying with backoff), Pub/Sub
(publish to a topic; a push subscription delivers to sort_worker) and SQS
(send; `python -m common.sqs_relay` long-polls and POSTs to sort_worker).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from common import errors
from common.config import settings
from common.lazy import Lazy

log = logging.getLogger("imageclassify.queue")
EVENT_TYPE = "com.imageclassify.sort.image"
EVENT_SOURCE = "//imageclassify/jobs"


class Queue(Protocol):
    def publish(self, messages: Sequence[dict[str, Any]]) -> None: ...


def cloudevent_headers(event_type: str = EVENT_TYPE, source: str = EVENT_SOURCE) -> dict[str, str]:
    """Headers of a binary-mode CloudEvent (the body is the JSON data)."""
    return {"ce-id": str(uuid.uuid4()), "ce-source": source, "ce-type": event_type, "ce-specversion": "1.0",
            "ce-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "Content-Type": "application/json"}


def post_event(url: str, body: bytes, event_type: str = EVENT_TYPE, source: str = EVENT_SOURCE,
               timeout: float = 120) -> int:
    import requests

    return requests.post(url, data=body, headers=cloudevent_headers(event_type, source), timeout=timeout).status_code


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


class PubSubQueue:
    def __init__(self, project: str, topic: str) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self.client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.05))
        self.topic = self.client.topic_path(project, topic)

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        futures = [self.client.publish(self.topic, json.dumps(m).encode()) for m in messages]
        for future in futures:
            future.result(timeout=60)


class SqsQueue:
    def __init__(self, queue_url: str) -> None:
        import boto3

        self.client: Any = boto3.client("sqs")
        self.url = queue_url

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            batch = [{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(messages[start:start + 10])]
            result = self.client.send_message_batch(QueueUrl=self.url, Entries=batch)
            if result.get("Failed"):
                raise errors.Unavailable(f"The queue refused {len(result['Failed'])} message(s); retry the request.")


def _open() -> Queue:
    s = settings()
    if s.queue_backend == "pubsub":
        return PubSubQueue(s.gcp_project, s.pubsub_topic)
    if s.queue_backend == "sqs":
        return SqsQueue(s.sqs_queue_url)
    return LocalQueue(s.worker_url)


_queue: Lazy[Queue] = Lazy(_open)
get_queue = _queue.get
