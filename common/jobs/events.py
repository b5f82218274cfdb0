"""What an event says: the payload of a CloudEvent, and the objects an upload notification announces.

Events arrive through functions-framework as CloudEvents: Pub/Sub push
(`messagePublished`, the payload base64 inside `message.data`), GCS
`object.v1.finalized` (directly, or as a bucket notification through Pub/Sub)
and S3 event notifications relayed from SQS.

`guard_current_app` refuses, with the JSON envelope and 400, a body that
functions-framework itself cannot turn into a CloudEvent (a JSON array, a
string, bytes that are not UTF-8): the framework fails on those before the
function runs and would answer its own 500. No queue of ours sends such a
body; a sender that does learns what is wrong (Pub/Sub would redeliver on any
failure status and, after its attempts, dead-letter it).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from common.core import errors, jsonlimits

EVENT_GUARDED = "imageclassify.event_guarded"
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


def _unconvertible() -> Any:
    """Before the framework's view: the 400 envelope for a body it could not make a CloudEvent of, else None.

    It tries what functions-framework tries, in its order: a CloudEvent (binary or
    structured), else a legacy background event converted to one. Any failure there
    (the framework would have raised outside the function, a 500) is the sender's.
    """
    import flask
    from cloudevents import exceptions as cloud_exceptions
    from cloudevents.http import from_http
    from functions_framework import event_conversion

    request = flask.request
    if request.method != "POST":  # the framework routes POST only; others get its 405
        return None
    try:
        try:
            from_http(request.headers, request.get_data())
        except (cloud_exceptions.MissingRequiredFields, cloud_exceptions.InvalidRequiredFields):
            event_conversion.background_event_to_cloud_event(request)
    except Exception:  # noqa: BLE001 - whatever the framework would have failed on
        refused = errors.BadRequest("The body is not a CloudEvent: send a JSON object in structured mode, or the "
                                    "ce-* headers with the data in binary mode.", code="bad_event")
        status, headers, body = errors.envelope(refused)
        return flask.Response(body, status=refused.status, headers=headers)
    return None


def guard_current_app(target: str) -> None:
    """Refuse bodies that are not CloudEvents on the app functions-framework is building for `target`.

    Called while the function's module loads (inside that app's context); a module
    defines several targets, so only the app serving `target` itself is guarded.
    """
    import flask

    if not flask.has_app_context():
        return
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    if app.name != target or app.extensions.get(EVENT_GUARDED):
        return
    app.extensions[EVENT_GUARDED] = True
    app.before_request(_unconvertible)
