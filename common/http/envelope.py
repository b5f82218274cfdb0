"""The error envelope: any exception as the contract's JSON error shape, its status and its headers.

The one place an exception becomes an HTTP answer: a domain error (`common.core.errors`) keeps its code and
message, a full disk anywhere in its cause chain becomes 507, anything else is logged and answered as a generic
500 that never shows its text. The HTTP layer's own refusals (the server's and werkzeug's) get the same shape.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from common.core.errors import AppError, InsufficientStorage, full_disk, log

# The HTTP layer's own refusals (the server's and werkzeug's), by status: the code and a message that says what to
# do. None of them echoes the request.
HTTP_REFUSALS = {
    400: ("bad_request", "The request is malformed. Check its headers and body."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This method is not supported here."),
    408: ("request_timeout", "The request was not received in time. Send the whole request at once."),
    411: ("length_required", "Send the body with a Content-Length header; chunked uploads are not accepted."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The URL is too long."),
    415: ("unsupported_media_type", "This Content-Type is not accepted."),
    417: ("expectation_failed", "This Expect header is not supported; send the request without it."),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("internal", "Something went wrong on our side. Retry later; if it persists, report it."),
    501: ("not_implemented", "This Transfer-Encoding is not supported; send the body with a Content-Length header."),
    505: ("http_version_not_supported", "Use HTTP/1.1."),
    507: ("insufficient_storage", "The server's disk is full, so nothing was stored. Retry later."),
}


def refusal(status: int) -> AppError:
    """The project's error for a refusal the HTTP layer made (never echoing the request)."""
    status = status if 400 <= status <= 599 else 400
    default = HTTP_REFUSALS[500 if status >= 500 else 400]
    code, message = HTTP_REFUSALS.get(status, default)
    return AppError(message, code=code, status=status)


SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff")]


def envelope(exc: AppError) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of the JSON error envelope for `exc`."""
    body = json.dumps(exc.body(), separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), *SECURITY_HEADERS, *exc.headers.items()]
    return f"{exc.status} {HTTPStatus(exc.status).phrase}", headers, body


def render(exc: BaseException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The JSON body, status and headers for any exception."""
    if not isinstance(exc, AppError) and full_disk(exc):  # the one place a full disk becomes its 507
        log.error("a write failed: the disk is full (%s)", exc)
        exc = InsufficientStorage()
    if isinstance(exc, AppError):
        return exc.body(), exc.status, exc.headers
    log.exception("unexpected error", exc_info=exc)
    return refusal(500).body(), 500, {}
