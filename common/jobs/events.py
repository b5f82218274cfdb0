"""What an event says: the payload of a CloudEvent, and the objects an upload notification announces.

Events arrive through functions-framework as CloudEvents: Pub/Sub push
(`messagePublished`, the payload base64 inside `message.data`), GCS
`object.v1.finalized` (directly, or as a bucket notification through Pub/Sub)
and S3 event notifications relayed from SQS.

A body that is no CloudEvent at all is refused before the framework reads it by
`common.http.eventguard`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from common.core import errors, jsonlimits

PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"


def event_data(event: Any) -> tuple[Any, dict[str, str]]:
    """The payload of a CloudEvent and its attributes, unwrapping a Pub/Sub message."""
    data = event.get_data() if hasattr(event, "get_data") else event.data
    if isinstance(data, (bytes, str)):
        try:
            data = jsonlimits.loads(data)
        except ValueError:
            raise errors.BadRequest("The event data is not JSON.") from None
    if event["type"] == PUBSUB_TYPE and isinstance(data, dict) and "message" in data:
        message = data["message"]
        if not isinstance(message, dict) or not isinstance(message.get("data", ""), str) \
                or not isinstance(message.get("attributes") or {}, dict):
            raise errors.BadRequest("The Pub/Sub message is not an object with string data and object attributes.")
        try:
            raw = base64.b64decode(message.get("data", ""))
            return (jsonlimits.loads(raw) if raw else {}), dict(message.get("attributes") or {})
        except (binascii.Error, ValueError):
            raise errors.BadRequest("The Pub/Sub message data is not base64 JSON.") from None
    return data, {}


def uploaded_objects(event: Any) -> list[tuple[str, str]]:
    """(bucket, key) of each new object an upload event announces: GCS, GCS through Pub/Sub, or S3."""
    data, attributes = event_data(event)
    if attributes:  # a GCS notification delivered through Pub/Sub
        if attributes.get("eventType") != "OBJECT_FINALIZE":
            return []
        return [(attributes.get("bucketId", data.get("bucket", "")), attributes.get("objectId", data.get("name", "")))]
    if isinstance(data, dict) and "Records" in data:  # S3 event notification (keys URL-encoded)
        return [(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
                for r in data["Records"] if str(r.get("eventName", "")).startswith("ObjectCreated")]
    if isinstance(data, dict) and "name" in data and "bucket" in data:  # GCS CloudEvent / local watcher
        return [(data["bucket"], data["name"])]
    return []
