"""One log line per request (and per CloudEvent), with the fields Cloud Logging and the metrics read.

`web.endpoint` opens a `RequestScope` around each HTTP handler: the trace from
`traceparent` or `X-Cloud-Trace-Context` and the function's name go on every
line logged meanwhile, business code adds facts with `logs.annotate` (the
username, images classified) and the store adds the tokens each committed
transaction spent or refunded; `finish` writes the line:

    {"severity": "INFO", "message": "POST /classify 200", "function": "classify",
     "httpRequest": {"requestMethod": "POST", "requestUrl": "/classify", "status": 200, "latency": "0.012000s",
                     "userAgent": "...", "remoteIp": "..."},
     "logging.googleapis.com/trace": "projects/p/traces/4bf9...", "user": "alice", "images": 1,
     "tokens": {"spent": 1, "refunded": 0}}

The URL is the path alone (a query string may carry anything), and the request
body and headers are never read here beyond the trace, the user agent and the
client address.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import flask
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from common.core import errors, logs, metrics
from common.core.config import settings
from common.http.clientaddr import client_address
from common.http.eventguard import guard_current_app

log = logging.getLogger("imageclassify.request")
TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
MAX_FIELD = 256


def trace_fields(headers: Headers | Mapping[str, str]) -> dict[str, Any]:
    """Cloud Logging's trace fields from a W3C `traceparent` (preferred) or `X-Cloud-Trace-Context` header; none
    when neither is well-formed (a malformed header is ignored, never echoed)."""
    trace, span, sampled = "", "", False
    parent = TRACEPARENT.fullmatch(headers.get("traceparent", "").strip().lower())
    cloud = CLOUD_TRACE.fullmatch(headers.get("X-Cloud-Trace-Context", "").strip())
    if parent and parent[1].strip("0"):
        trace, span, sampled = parent[1], parent[2], bool(int(parent[3], 16) & 1)
    elif cloud and cloud[1].strip("0"):
        trace, sampled = cloud[1].lower(), cloud[3] == "1"
        span = f"{int(cloud[2]):016x}" if cloud[2] and 0 < int(cloud[2]) < 2 ** 64 else ""
    if not trace:
        return {}
    fields: dict[str, Any] = {"logging.googleapis.com/trace": f"projects/{settings().gcp_project}/traces/{trace}",
                              "logging.googleapis.com/trace_sampled": sampled}
    if span.strip("0"):
        fields["logging.googleapis.com/spanId"] = span
    return fields


class RequestScope:
    """`with RequestScope(name, request) as scope: ... return scope.finish(response)`."""

    def __init__(self, function: str, request: flask.Request) -> None:
        self.function, self.request = function, request

    def __enter__(self) -> RequestScope:
        self.started = time.perf_counter()
        try:
            trace = trace_fields(self.request.headers)
        except RuntimeError:  # a bad setting: the handler reports it; the line goes without a trace
            trace = {}
        self.token = logs.begin(function=self.function, **trace)
        return self

    def __exit__(self, *_: object) -> None:
        logs.end(self.token)

    def finish(self, response: flask.Response) -> flask.Response:
        try:
            request_line(self.function, self.request, response, time.perf_counter() - self.started)
        except Exception:  # noqa: BLE001 - a line that cannot be written must not cost the reply
            log.exception("the request line could not be written")
        return response


def request_line(function: str, request: flask.Request, response: flask.Response, seconds: float) -> None:
    """Log the request's one line and count it."""
    status = response.status_code
    http: dict[str, Any] = {"requestMethod": request.method[:16], "requestUrl": request.path[:MAX_FIELD],
                            "status": status, "latency": f"{seconds:.6f}s", "remoteIp": client_address(request),
                            "protocol": str(request.environ.get("SERVER_PROTOCOL", ""))[:16]}
    if request.user_agent.string:
        http["userAgent"] = request.user_agent.string[:MAX_FIELD]
    if request.content_length:
        http["requestSize"] = str(request.content_length)
    if response.content_length is not None:
        http["responseSize"] = str(response.content_length)
    context = logs.current()
    extra: dict[str, Any] = {"httpRequest": http}
    extra.update((k, context[k]) for k in ("images", "tokens") if k in context)
    if status >= 400 and context.get("error"):  # set by `web.error_response`, which built the envelope
        extra["error"] = context["error"]
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    log.log(level, "%s %s %d", request.method[:16], request.path[:MAX_FIELD], status, extra=extra)
    metrics.count("requests", function=function, status=status)
    metrics.observe("request_duration_seconds", seconds, function=function)
    metrics.count("images_classified", int(context.get("images") or 0), via=function)


Event = Any


class FullDisk(HTTPException):
    code, description = 507, "The disk is full."


def events(handler: Callable[[Event], None]) -> Callable[[Event], None]:
    """Wrap a CloudEvent function: its lines carry its name, and each event gets one line with its outcome.
    An exception still propagates (functions-framework answers 500, so the queue delivers again); a body that
    is no CloudEvent at all is refused 400 before the framework reads it (`common.http.eventguard`)."""
    logs.configure()
    name = handler.__name__
    guard_current_app(name)

    @functools.wraps(handler)
    def wrapper(event: Event) -> None:
        started, outcome = time.perf_counter(), "ok"
        token = logs.begin(function=name)
        try:
            handler(event)
        except Exception as exc:
            outcome = type(exc).__name__
            if errors.full_disk(exc):  # a 507, so the queue retries without spending one of the message's attempts
                raise FullDisk() from exc
            raise
        finally:
            seconds = time.perf_counter() - started
            described = {"type": str(event["type"])[:MAX_FIELD], "id": str(event["id"])[:MAX_FIELD]}
            log.log(logging.INFO if outcome == "ok" else logging.ERROR, "event %s: %s", described["type"], outcome,
                    extra={"cloudevent": described, "seconds": round(seconds, 6), "outcome": outcome})
            metrics.count("events", function=name, outcome="ok" if outcome == "ok" else "error")
            logs.end(token)

    return wrapper
