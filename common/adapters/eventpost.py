"""POST a CloudEvent in binary mode (`ce-*` headers, JSON body), as Pub/Sub push and Eventarc deliver them.

Used by the embedded queue, the SQS relay and the local stack's bucket watcher
to reach a CloudEvent function over HTTP, each thread on a keep-alive
connection of its own (a connection per event cost the worker's process a
TCP set-up and tear-down on both ends of every image).
"""

from __future__ import annotations

import threading
from typing import Any

BATCH = "batch"  # the data of an event that carries several queue messages: {"batch": [message, ...]}
MAX_BATCH = 64  # messages in one such event at most (the worker drops a longer one: not ours)
_local = threading.local()
EVENT_TYPE = "com.imageclassify.sort.image"
EVENT_SOURCE = "//imageclassify/jobs"


def binary_event(data: Any, event_type: str = EVENT_TYPE, source: str = EVENT_SOURCE,
                 extra_headers: dict[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode CloudEvent carrying `data` (a JSON value, or bytes sent as they are)."""
    from cloudevents.conversion import to_binary
    from cloudevents.http import CloudEvent

    attributes = {"type": event_type, "source": source, "datacontenttype": "application/json"}
    headers, body = to_binary(CloudEvent(attributes, data))
    return {**headers, **(extra_headers or {})}, body or b""


def post_event(url: str, data: Any, event_type: str = EVENT_TYPE, source: str = EVENT_SOURCE,
               timeout: float = 120, headers: dict[str, str] | None = None) -> int:
    """Deliver one event; the HTTP status the function answered."""
    import requests

    event_headers, body = binary_event(data, event_type, source, headers)
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # the queue's own worker: no proxy, no .netrc looked up per event
    return int(session.post(url, data=body, headers=event_headers, timeout=timeout).status_code)
