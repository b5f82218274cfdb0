"""Pub/Sub: publish to a topic; a push subscription delivers each message to the worker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


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
