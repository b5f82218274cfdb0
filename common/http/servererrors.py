"""The JSON error envelope for refusals gunicorn makes itself, before any app code runs.

functions-framework serves every function with gunicorn. A request gunicorn
cannot parse (a bad request line, duplicated Content-Length, a header over its
limits) never reaches the WSGI app: gunicorn answers it with an HTML page that
quotes the offending line. gunicorn writes all of those through one function,
`gunicorn.util.write_error(sock, status, reason, message)`; pointing that at
`write_error` below makes them the project's envelope, echoing nothing. It is
installed when a function's app is built, before gunicorn forks its workers.

gunicorn also answers `Expect: 100-continue` with `100 Continue` as it builds
the request (`gunicorn.http.wsgi.create`), before any app code runs, inviting
a body the guard then refuses. `create` is wrapped so that no `100 Continue`
is sent for a Content-Length the guard will refuse: the client gets the 413
at once and never starts sending.

Why these two patches are unavoidable: gunicorn offers no setting or hook for
its own error pages (its worker calls `util.write_error` directly), and its one
hook before `create` (`pre_request`) is a server setting that functions-framework
does not let a function set (its `GunicornApplication` builds the configuration
from fixed options and reads neither a config file nor `GUNICORN_CMD_ARGS`).
Both patches keep the original's signature and call through to gunicorn; any
other server (waitress, werkzeug) is left alone.
"""

from __future__ import annotations

import socket
from typing import Any

from common.http import envelope

_installed = False


def write_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's `util.write_error`, answering with the envelope for `status` instead of `message`."""
    from gunicorn import util

    status_line, headers, body = envelope.envelope(envelope.refusal(status))
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
    _no_continue_past_the_limit()


def _continue_allowed(headers: Any) -> bool:
    """Whether a request's declared body may be sent: one Content-Length, digits, within MAX_BODY_BYTES."""
    from common.core.config import settings

    lengths = [value.strip() for name, value in headers if name.upper() == "CONTENT-LENGTH"]
    return len(lengths) == 1 and lengths[0].isascii() and lengths[0].isdigit() and \
        int(lengths[0]) <= settings().http.max_body_bytes


def _no_continue_past_the_limit() -> None:
    from gunicorn.http import wsgi

    original: Any = wsgi.create

    def create(req: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(req, "_expected_100_continue", False) and not _continue_allowed(req.headers):
            req._expected_100_continue = False  # the guard answers 413 (or 400) and closes: no invitation
        return original(req, *args, **kwargs)

    wsgi.create = create
