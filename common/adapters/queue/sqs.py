"""SQS: send in batches of ten; `common.adapters.queue.sqs_relay` delivers them to the worker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from common.adapters import aws
from common.core import errors


class SqsQueue:
    def __init__(self, queue_url: str) -> None:
        self.client: Any = aws.client("sqs")
        self.url = queue_url

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            batch = [{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(messages[start:start + 10])]
            result = self.client.send_message_batch(QueueUrl=self.url, Entries=batch)
            if result.get("Failed"):
                raise errors.Unavailable(f"The queue refused {len(result['Failed'])} message(s); retry the request.")
