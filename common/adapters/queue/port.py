"""The queue port: publish messages, each delivered (at least once) to a CloudEvent worker function.

Adapters: `local.py` (the embedded default: a durable SQLite queue that POSTs
each message to the worker as a CloudEvent), `pubsub.py` (a topic whose push
subscription delivers to the worker) and `sqs.py` (`sqs_relay.py` long-polls
and POSTs to the worker). A message is a small JSON object; which worker it
is for is the adapter's configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Queue(Protocol):
    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        """Accept every message durably, or raise (then none of them may be assumed delivered)."""
        ...
