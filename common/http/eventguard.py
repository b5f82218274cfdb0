"""Refuse, with the JSON envelope and 400, a body that functions-framework itself cannot turn into a CloudEvent
(a JSON array, a string, bytes that are not UTF-8): the framework fails on those before the function runs and
would answer its own 500. No queue of ours sends such a body; a sender that does learns what is wrong (Pub/Sub
would redeliver on any failure status and, after its attempts, dead-letter it). What an event says is read by
`common.jobs.events`.

Why the body is parsed twice (here, then by the framework): functions-framework parses the request into a
CloudEvent inside its own view function (`_cloud_event_view_func_wrapper`), with no hook that could hand it an
event parsed before, and it lets any parse failure other than a missing attribute escape as a 500 before the
function runs. Telling those failures apart from the function's own (which must stay a 500, so the queue
delivers again) would mean patching that private view; parsing once more before it is the public way. The
function itself never parses: it reads the framework's event (`common.jobs.events.event_data` decodes only the
Pub/Sub envelope inside it, which is a second layer, not the same bytes).
"""

from __future__ import annotations

from typing import Any

from common.core import errors
from common.http import envelope

EVENT_GUARDED = "imageclassify.event_guarded"


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
        status, headers, body = envelope.envelope(refused)
        return flask.Response(body, status=int(status.split(" ", 1)[0]), headers=headers)
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
