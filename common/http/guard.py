"""The HTTP layer in front of every function: limits first, one error shape, security headers, CORS.

A WSGI middleware, installed around each functions-framework app (`install`)
and around the local stack's dispatcher. It has to sit outside Flask: a limit
on the body must be decided before anything reads the body, and
functions-framework reads every request body to its end after the handler
returned (`read_request`), so a refusal from inside a handler still waits for
a 5 GB upload. Here a declared Content-Length over MAX_BODY_BYTES is answered
413 at once, the body never read, and the connection closed.

Before the app sees a request: HTTP/1.0 or 1.1 only, URL at most `MAX_URL`
bytes, Content-Length digits only and within the limit, no Transfer-Encoding
(411), JSON bodies nested at most `jsonlimits.MAX_DEPTH` deep, multipart forms of
at most `MAX_FORM_PARTS` parts (400 `too_many_parts`, not the parser's 413). After it
answered: every error that is not already the JSON envelope (werkzeug's HTML
404/405, functions-framework's crash text) is replaced by the envelope for its
status, echoing nothing; `X-Content-Type-Options: nosniff`, `Cache-Control:
no-store` (unless the app chose one) and no `Server` header from the app.

CORS, for the origins in `CORS_ORIGINS` only: a preflight is answered 204 with
the allowed methods and headers, and replies carry `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from common.core import errors, jsonlimits
from common.core.config import settings
from common.http import envelope as envelopes

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

GUARDED = "imageclassify.guarded"
MAX_URL = 8192
MAX_FORM_PARTS = 1000  # what Flask's form parser reads (its `max_form_parts`)
PROTOCOLS = {"HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"}
SECURITY_HEADERS = envelopes.SECURITY_HEADERS
DEPTH_CHECKED = "imageclassify.json_depth_checked"
envelope = envelopes.envelope
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_EXPOSE = "Location, Retry-After, WWW-Authenticate"
CORS_MAX_AGE = "3600"


def _check(environ: Environ) -> errors.AppError | None:
    """The refusal a request earns from its request line and headers alone, if any."""
    if environ.get("SERVER_PROTOCOL", "") not in PROTOCOLS:
        return envelopes.refusal(505)
    if len(environ.get("RAW_URI") or environ.get("REQUEST_URI") or
           environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")) > MAX_URL:
        return envelopes.HttpError(f"The URL is longer than {MAX_URL} bytes. Send long input in the body.",
                                   code="uri_too_long", status=414)
    if environ.get("HTTP_TRANSFER_ENCODING"):
        return envelopes.refusal(411)
    declared = environ.get("CONTENT_LENGTH", "")
    if declared and not (declared.isascii() and declared.isdigit()):
        return errors.BadRequest("The Content-Length header must be one whole number of bytes.",
                                 code="invalid_content_length")
    limit = settings().http.max_body_bytes
    if declared and int(declared) > limit:
        return errors.PayloadTooLarge(f"The request body is larger than {limit} bytes. Send a smaller image"
                                      + (UPLOAD_FORM_HINT if settings().storage.storage_backend == "s3" else "."))
    return None


# On AWS (S3 storage) a function URL takes about 4.5 MB of image: a larger one has its own way in.
UPLOAD_FORM_HINT = (", or put it in your space with an upload form (POST /files/<path> {\"size\": <bytes>}) and "
                    "classify it by its uri.")


def _may_be_json(environ: Environ) -> bool:
    kind = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


def _buffered(environ: Environ) -> bytes:
    """The body (within the limit, checked before), read here and handed on to the app unchanged."""
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    return bytes(raw)


def _check_json(environ: Environ) -> errors.AppError | None:
    """Refuse a JSON body nested too deeply. A body without a Content-Type counts as JSON only if it looks like
    JSON (an image PUT without one is not)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if not declared or declared == "0" or not _may_be_json(environ):
        return None
    raw = _buffered(environ)
    if not environ.get("CONTENT_TYPE") and raw.lstrip()[:1] not in (b"{", b"["):
        return None
    if jsonlimits.too_deep(raw):
        return jsonlimits.refusal()
    environ[DEPTH_CHECKED] = True  # the body the app reads is these bytes: `web.json_body` need not scan again
    return None


def _check_form(environ: Environ) -> errors.AppError | None:
    """Refuse a multipart form of more than MAX_FORM_PARTS parts with its own 400: the form parser would refuse
    it as a body too large, which it is not."""
    kind, _, options = environ.get("CONTENT_TYPE", "").partition(";")
    boundary = next((v.strip().strip('"') for k, _, v in (o.partition("=") for o in options.split(";"))
                     if k.strip().lower() == "boundary"), "")
    if kind.strip().lower() != "multipart/form-data" or not boundary or environ.get("CONTENT_LENGTH", "0") == "0":
        return None
    parts = _buffered(environ).count(b"--" + boundary.encode("latin-1")) - 1  # the last delimiter closes the form
    if parts > MAX_FORM_PARTS:
        return errors.BadRequest(f"The form has {parts:,} parts; at most {MAX_FORM_PARTS:,} are read. Send fewer "
                                 "fields and files in one request.", code="too_many_parts")
    return None


def form_field_too_large() -> envelopes.HttpError:
    """The only 413 the app's framework makes itself for a body within the limit: a form's text field past its
    `max_form_memory_size` (forms of too many parts are refused before)."""
    return envelopes.HttpError("A form field that is not a file is larger than 500,000 bytes: send the image as a "
                               "file part (-F file=@photo.jpg) or as the raw body.", code="form_field_too_large",
                               status=413)


def _allowed_origin(environ: Environ) -> str | None:
    origin = environ.get("HTTP_ORIGIN", "").rstrip("/")
    allowed = settings().http.cors_origins
    if origin and (origin in allowed or "*" in allowed):
        return origin
    return None


def _cors_headers(origin: str | None) -> list[tuple[str, str]]:
    if not settings().http.cors_origins:
        return []
    if origin is None:
        return [("Vary", "Origin")]
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", CORS_EXPOSE),
            ("Vary", "Origin")]


def _close_after(start_response: StartResponse) -> None:
    """Ask the server to close the connection after this reply instead of reading the rest of the body.

    gunicorn (functions-framework's server) ignores a Connection header from the app
    and would read up to 64 KiB more first; its response object has `force_close`.
    """
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()


class Guard:
    """The WSGI middleware; the outermost instance does the work, inner ones pass requests through."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(GUARDED):
            return self.app(environ, start_response)
        environ[GUARDED] = True
        origin = _allowed_origin(environ)
        refused = _check(environ)
        if refused is not None:  # the body, if any, is left unread: the connection cannot be reused
            _close_after(start_response)
            return self._refuse(refused, origin, start_response)
        refused = _check_json(environ) or _check_form(environ)
        if refused is not None:
            return self._refuse(refused, origin, start_response)
        if origin and environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            start_response("204 No Content", [
                *_cors_headers(origin), ("Access-Control-Allow-Methods", CORS_METHODS),
                *envelopes.secured([("Access-Control-Allow-Headers", CORS_HEADERS),
                                    ("Access-Control-Max-Age", CORS_MAX_AGE)])])
            return []
        return self._answer(environ, start_response, origin)

    def _refuse(self, exc: errors.AppError, origin: str | None, start_response: StartResponse) -> list[bytes]:
        status, headers, body = envelope(exc)
        start_response(status, headers + _cors_headers(origin))
        return [body]

    def _answer(self, environ: Environ, start_response: StartResponse, origin: str | None) -> Iterable[bytes]:
        """The app's reply with the headers amended; a non-JSON error reply becomes the envelope."""
        replaced: list[errors.AppError] = []

        def amend(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            code = int(status.split(" ", 1)[0])
            kind = next((v for n, v in headers if n.lower() == "content-type"), "")
            if code >= 400 and not kind.startswith("application/json"):
                error = envelopes.refusal(code) if code != 413 else form_field_too_large()
                error.headers.update({n: v for n, v in headers if n.lower() in ("allow", "retry-after")})
                replaced.append(error)
                return lambda data: None
            return start_response(status, envelopes.secured(headers) + _cors_headers(origin), exc_info)

        body = self.app(environ, amend)
        if not replaced:
            body = _started(body, replaced)  # a lazy app starts its reply on the first item
        if replaced:
            _close_iterable(body)
            return self._refuse(replaced[0], origin, start_response)
        return body


def _started(body: Iterable[bytes], replaced: list[errors.AppError]) -> Iterable[bytes]:
    """`body`, with its first item already pulled when the app had not called start_response yet."""
    if isinstance(body, list):
        return body
    iterator: Iterator[bytes] = iter(body)
    try:
        first = next(iterator)
    except StopIteration:
        return body
    return _Chained(chain([first], iterator), body)


class _Chained:
    """An iterable that still closes the app's original body (PEP 3333)."""

    def __init__(self, items: Iterator[bytes], original: Iterable[bytes]) -> None:
        self.items, self.original = items, original

    def __iter__(self) -> Iterator[bytes]:
        return self.items

    def close(self) -> None:
        _close_iterable(self.original)


def _close_iterable(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()


def install(app: Any) -> None:
    """Put the guard in front of a functions-framework (Flask) app, once."""
    if app.extensions.get(GUARDED):
        return
    app.extensions[GUARDED] = True
    app.wsgi_app = Guard(app.wsgi_app)
    from common.http import multipart, servererrors

    app.request_class = multipart.Request  # forms cut directly, without werkzeug's per-boundary regexes

    servererrors.install()


def install_on_current_app() -> None:
    """Guard the app being built, when called while functions-framework loads a function's module.

    functions-framework executes each function's main.py inside the app context of
    the app it is creating, so this reaches every function's app, HTTP and CloudEvent
    targets alike, in the cloud, in the local stack and in `create_app(...).test_client()`.
    """
    import flask

    if flask.has_app_context():
        install(flask.current_app._get_current_object())  # type: ignore[attr-defined]
