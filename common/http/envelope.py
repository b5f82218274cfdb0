"""The error envelope: any exception as the contract's JSON error shape, its status and its headers.

The one place an exception becomes an HTTP answer: a domain error (`common.core.errors`) keeps its code and
message, a full disk anywhere in its cause chain becomes 507, anything else is logged and answered as a generic
500 that never shows its text. The HTTP layer's own refusals (the server's and werkzeug's) get the same shape.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from common.core import errors
from common.core.errors import AppError, InsufficientStorage, full_disk, log

# The one table from domain errors to HTTP statuses: a class answers with the status of its nearest listed ancestor.
STATUS: dict[type[AppError], int] = {
    errors.BadRequest: 400, errors.Unauthorized: 401, errors.InsufficientTokens: 402, errors.Forbidden: 403,
    errors.NotFound: 404, errors.Conflict: 409, errors.PayloadTooLarge: 413, errors.UnsupportedMediaType: 415,
    errors.Unprocessable: 422, errors.UnprocessableRequest: 422, errors.TooManyRequests: 429,
    errors.BadGateway: 502, errors.Unavailable: 503, errors.GatewayTimeout: 504, errors.InsufficientStorage: 507,
    AppError: 500,
}
WWW_AUTHENTICATE = 'Bearer realm="imageclassify", Basic realm="imageclassify"'


class HttpError(AppError):
    """A refusal only the HTTP layer makes (a method, a URL, the server's own): its status and headers given."""

    def __init__(self, message: str, *, code: str, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.status, self.headers = status, dict(headers or {})


class MethodNotAllowed(HttpError):
    def __init__(self, message: str, *, headers: dict[str, str]) -> None:
        super().__init__(message, code="method_not_allowed", status=405, headers=headers)


def status_of(exc: AppError) -> int:
    if isinstance(exc, HttpError):
        return exc.status
    return next(STATUS[k] for k in type(exc).__mro__ if k in STATUS)


def headers_of(exc: AppError) -> dict[str, str]:
    headers = dict(exc.headers) if isinstance(exc, HttpError) else {}
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return headers


def body_of(exc: AppError) -> dict[str, Any]:
    """The contract's error object: `{"error": {status, code, message, ...details}}`."""
    return {"error": {"status": status_of(exc), "code": exc.code, "message": exc.message, **exc.details}}


def present(exc: AppError) -> tuple[int, dict[str, Any]]:
    """The status and body a domain error answers with (handed to the services that keep or list replies)."""
    return status_of(exc), body_of(exc)


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


def refusal(status: int) -> HttpError:
    """The project's error for a refusal the HTTP layer made (never echoing the request)."""
    status = status if 400 <= status <= 599 else 400
    default = HTTP_REFUSALS[500 if status >= 500 else 400]
    code, message = HTTP_REFUSALS.get(status, default)
    return HttpError(message, code=code, status=status)


SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff")]
Headers = list[tuple[str, str]]


def secured(headers: Headers) -> Headers:
    """`headers` as every reply sends them: the one place the security and cache headers are set (the guard for
    the app's replies, the envelope for the refusals made before or outside the app). `Cache-Control: no-store`
    unless the reply chose its own (the console's assets), `nosniff`, and no `Server` header from the app."""
    names = {name.lower() for name, _ in headers}
    kept = [(n, v) for n, v in headers if n.lower() != "server"]
    cache = [] if "cache-control" in names else [("Cache-Control", "no-store")]
    return kept + cache + [(n, v) for n, v in SECURITY_HEADERS if n.lower() not in names]


def envelope(exc: AppError) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of the JSON error envelope for `exc`."""
    body = json.dumps(body_of(exc), separators=(",", ":")).encode()
    headers = secured([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                       *headers_of(exc).items()])
    status = status_of(exc)
    return f"{status} {HTTPStatus(status).phrase}", headers, body


def render(exc: BaseException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The JSON body, status and headers for any exception."""
    if not isinstance(exc, AppError) and full_disk(exc):  # the one place a full disk becomes its 507
        log.error("a write failed: the disk is full (%s)", exc)
        exc = InsufficientStorage()
    if isinstance(exc, AppError):
        return body_of(exc), status_of(exc), headers_of(exc)
    log.exception("unexpected error", exc_info=exc)
    return body_of(refusal(500)), 500, {}
