"""The JSON error envelope for refusals gunicorn makes itself, before any app code runs.

functions-framework serves every function with gunicorn. A request gunicorn
cannot parse (a bad request line, duplicated Content-Length, a header over its
limits) never reaches the WSGI app: gunicorn answers it with an HTML page that
quotes the offending line. gunicorn writes all of those through one function,
`gunicorn.util.write_error(sock, status, reason, message)`; pointing that at
`write_error` below makes them the project's envelope, echoing nothing. It is
installed when a function's app is built, before gunicorn forks its workers.
"""

from __future__ import annotations

import socket
from typing import Any

from common import errors

_installed = False


def write_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's `util.write_error`, answering with the envelope for `status` instead of `message`."""
    from gunicorn import util

    status_line, headers, body = errors.envelope(errors.refusal(status))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    util.write_nonblock(sock, f"HTTP/1.1 {status_line}\r\nConnection: close\r\n{head}\r\n".encode("latin-1") + body)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from gunicorn import util
    except ImportError:  # another server (the local stack's waitress, werkzeug in --debug): nothing to do
        return
    original: Any = getattr(util, "write_error", None)
    if callable(original):
        util.write_error = write_error
