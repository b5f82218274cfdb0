"""The project's exceptions, each with a stable code and a message that says what to do.

Business code raises these; `common.http.envelope` turns any exception into the
one error shape of the HTTP contract. Anything that is not an `AppError` is a bug:
it is logged with its traceback and the client sees a generic 500, never its text.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from typing import Any

log = logging.getLogger("imageclassify")


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None,
                 details: dict[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.headers = headers or {}
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}


class BadRequest(AppError):
    status, code = 400, "bad_request"


class UrlNotAllowed(BadRequest):
    code = "url_not_allowed"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="imageclassify", Basic realm="imageclassify"'})
        super().__init__(message, **kwargs)


class InsufficientTokens(AppError):
    status, code = 402, "insufficient_tokens"

    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(
            f"This request needs {needed} token(s) but the account has {balance}. "
            "Ask an administrator to refill your account (POST /refill).",
            details={"balance": balance, "needed": needed},
        )
        self.balance = balance
        self.needed = needed


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class MethodNotAllowed(AppError):
    status, code = 405, "method_not_allowed"


class Conflict(AppError):
    status, code = 409, "conflict"


class LengthRequired(AppError):
    status, code = 411, "length_required"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(AppError):
    status, code = 422, "unprocessable_image"


class UnprocessableRequest(AppError):
    """Well-formed but refused as a whole, e.g. an Idempotency-Key reused for a different request."""

    status, code = 422, "unprocessable_request"


class TooManyRequests(AppError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class BadGateway(AppError):
    status, code = 502, "upstream_error"


class Unavailable(AppError):
    """A retryable failure such as database contention: the client may retry."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class GatewayTimeout(AppError):
    status, code = 504, "upstream_timeout"


class InsufficientStorage(AppError):
    """The server's disk is full: nothing was written (or what was is rolled back); the same request succeeds
    once an operator frees space."""

    status, code = 507, "insufficient_storage"

    def __init__(self, message: str = "The server's disk is full, so nothing was stored. Retry later; an operator "
                                      "has to free space.", retry_after: int = 30) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


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
