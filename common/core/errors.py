"""The project's domain errors, each with a stable code and a message that says what to do (no HTTP status:
`common.http.envelope` holds the one table from these classes to statuses and headers).

Business code raises these; `common.http.envelope` turns any exception into the
one error shape of the HTTP contract. Anything that is not an `AppError` is a bug:
it is logged with its traceback and the client sees a generic 500, never its text.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("imageclassify")


class AppError(Exception):
    """A refusal the caller can act on: a stable `code`, a `message` that says what to do, optional `details`
    (fields of the error object) and `retry_after` (seconds, when retrying later can succeed). The HTTP status
    and headers each class answers with are the HTTP layer's (`common.http.envelope`), looked up by class."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}
        self.retry_after = retry_after


class BadRequest(AppError):
    code = "bad_request"


class UrlNotAllowed(BadRequest):
    code = "url_not_allowed"


class Unauthorized(AppError):
    code = "unauthorized"


class InsufficientTokens(AppError):
    code = "insufficient_tokens"

    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(
            f"This request needs {needed} token(s) but the account has {balance}. "
            "Ask an administrator to refill your account (POST /refill).",
            details={"balance": balance, "needed": needed},
        )
        self.balance = balance
        self.needed = needed


class Forbidden(AppError):
    code = "forbidden"


class NotFound(AppError):
    code = "not_found"


class Conflict(AppError):
    code = "conflict"


class PayloadTooLarge(AppError):
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    code = "unsupported_media_type"


class Unprocessable(AppError):
    code = "unprocessable_image"


class UnprocessableRequest(AppError):
    """Well-formed but refused as a whole, e.g. an Idempotency-Key reused for a different request."""

    code = "unprocessable_request"


class RetryLater(AppError):
    """A refusal the same request overcomes by waiting: its reply says how long (Retry-After)."""

    def __init__(self, message: str, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class TooManyRequests(RetryLater):
    code = "too_many_requests"


class BadGateway(AppError):
    code = "upstream_error"


class Unavailable(RetryLater):
    """A retryable failure such as database contention: the client may retry."""

    code = "unavailable"


class GatewayTimeout(AppError):
    code = "upstream_timeout"


class InsufficientStorage(AppError):
    """The server's disk is full: nothing was written (or what was is rolled back); the same request succeeds
    once an operator frees space."""

    code = "insufficient_storage"

    def __init__(self, message: str = "The server's disk is full, so nothing was stored. Retry later; an operator "
                                      "has to free space.", retry_after: int = 30) -> None:
        super().__init__(message, retry_after=retry_after)


# How a domain error is shown to its caller: (status, {"error": {...}}). The HTTP layer's `envelope.present` is the
# one there is; an entry point hands it to the services that keep replies (classify) or write errors out (labels).
Present = Callable[[AppError], tuple[int, dict[str, Any]]]


def retry_later(message: str, cause: BaseException) -> AppError:
    """The error for work that could not be queued: a 507 when the disk is full, else a 503 with `message`."""
    return InsufficientStorage() if full_disk(cause) else Unavailable(message)


FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
last_full_disk = 0.0  # when this process last met a full disk (monotonic), for /healthz


def full_disk(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a full disk: ENOSPC or a quota from the OS, SQLITE_FULL from SQLite.
    Noted for /healthz, which reports a recent one."""
    global last_full_disk
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS) or isinstance(exc, InsufficientStorage) or (
                isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL):
            last_full_disk = time.monotonic()
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# What an image can be refused for (empty, not an image, too large, undecodable): the image's fault,
# recorded as that image's outcome rather than retried.
BAD_IMAGE = (BadRequest, UnsupportedMediaType, PayloadTooLarge, Unprocessable)
