"""HTTP helpers shared by every function: the endpoint wrapper, JSON bodies, routing.

Each function's handler is wrapped in `endpoint`, the one place where exceptions
become the contract's JSON error shape (`common.http.envelope`) with a real
status. The decorator also puts the guard (`common.http.guard`: limits before the
body is read, the envelope for the server's own refusals, security headers, CORS)
in front of the app that functions-framework is building for the function.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as NoRoute
from werkzeug.routing import Map, PathConverter, Rule

from common.core import errors, jsonlimits, logs
from common.http import envelope, health, requestlog, scopes
from common.http import guard as httpguard

Handler = Callable[[flask.Request], flask.Response]
PARSED = "imageclassify.json"  # the request's JSON object, once parsed


def respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(data, separators=(",", ":")), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response  # the cache and security headers: the guard's (`envelope.secured`), on every reply


def error_response(exc: BaseException) -> flask.Response:
    if isinstance(exc, HTTPException):  # werkzeug's own refusals, e.g. a malformed multipart body
        refused = envelope.refusal(exc.code or 400) if exc.code != 413 else httpguard.form_field_too_large()
        refused.headers.update({n: v for n, v in exc.get_headers() if n.lower() in ("allow", "retry-after")})
        exc = refused
    body, status, headers = envelope.render(exc)
    logs.annotate(error=str(body["error"]["code"])[:64])  # for the request's line, without reading the reply back
    return respond(body, status, headers)


def endpoint(handler: Handler) -> Handler:
    """Wrap an HTTP handler: every exception rendered as JSON, one log line per request
    (common/http/requestlog.py), and `GET /healthz` answered before routing (common/http/health.py).

    Also installs the request guard (limits before the body is read, security headers, CORS) on the app
    that is loading this module, and renders the framework's own refusals as JSON: a request its router
    never hands to the handler (e.g. a path with a newline) would otherwise get Flask's HTML page.
    """
    import functions_framework

    httpguard.install_on_current_app()
    functions_framework.errorhandler(HTTPException)(error_response)
    logs.configure()  # JSON log lines from import on (before Flask gives its logger a plain handler)
    name = handler.__name__

    @functools.wraps(handler)
    def wrapper(request: flask.Request) -> flask.Response:
        request.environ[scopes.FUNCTION] = name  # what a scoped key may call is decided per function (scopes.py)
        with requestlog.RequestScope(name, request) as scope:  # one log line per request, see common/http/requestlog.py
            try:  # the body's size was refused from its headers already, by the guard (common/http/guard.py)
                probe = health.probe(name, request)  # GET /healthz, before any routing
                return scope.finish(respond(*probe) if probe else handler(request))
            except Exception as exc:  # noqa: BLE001 - this is the one place errors are rendered
                return scope.finish(error_response(exc))

    return wrapper


class Rest(PathConverter):
    """The rest of the path as it was sent, empty, `/`-led or with a newline included: the service that reads it
    (e.g. `common.files.spaces.clean_path`) is the one place that says why such a path is refused."""

    regex = r"[\s\S]*"
    part_isolating = False


class Routes:
    """A function's paths as werkzeug rules (`Map`/`Rule`); a path no rule matches is a 404 saying `hint`.

    A function may be mounted under a prefix (an API gateway's stage), so the path is matched from its first
    segment that begins a rule. Methods are checked by the handler (`require_method`), which knows the order
    of refusals the contract keeps (405 before 401 before 404)."""

    def __init__(self, *rules: str, hint: str) -> None:
        self.urls = Map([Rule(rule, endpoint=rule) for rule in rules], converters={"rest": Rest},
                        strict_slashes=False, merge_slashes=False).bind("localhost")
        self.starts = {rule.split("/")[1] for rule in rules}
        self.hint = hint

    def match(self, request: flask.Request, default: str | None = None) -> tuple[str, dict[str, str]]:
        """(the rule matched, its arguments); `default` (no arguments) for a path none of the rules begins, such as
        the function's own root, when given."""
        segments = request.path.split("/")
        start = next((i for i, segment in enumerate(segments) if segment in self.starts), None)
        if start is None and default is not None:
            return default, {}
        try:
            if start is None:
                raise NoRoute()
            rule, arguments = self.urls.match("/" + "/".join(segments[start:]))
        except HTTPException:  # NotFound, or a redirect the map is built never to answer
            raise errors.NotFound(self.hint) from None
        return str(rule), {name: str(value) for name, value in arguments.items()}


def require_method(request: flask.Request, *methods: str) -> None:
    if request.method not in methods:
        raise envelope.MethodNotAllowed(
            f"{request.method} is not supported on {request.path}; use {' or '.join(methods)}.",
            headers={"Allow": ", ".join(methods)},
        )


def read_body(request: flask.Request) -> bytes:
    """The raw body; its size was checked against the limit by the guard before anything read it."""
    return request.get_data(cache=True)


def is_json(request: flask.Request) -> bool:
    return request.mimetype == "application/json" or request.mimetype.endswith("+json")


def json_body(request: flask.Request, *, required: bool = True) -> dict[str, Any]:
    """The JSON object in the body; `{}` when the body is empty and not required."""
    raw = read_body(request)
    if not raw.strip():
        if required:
            raise errors.BadRequest("The request needs a JSON object body (Content-Type: application/json).")
        return {}
    if request.mimetype and not is_json(request):
        raise errors.UnsupportedMediaType(
            f"Expected Content-Type application/json, got {request.mimetype}. Send the body as JSON."
        )
    if PARSED in request.environ:  # the handler and the credentials both read it: one parse a request
        return dict(request.environ[PARSED])
    try:
        data = jsonlimits.loads(raw, depth_checked=bool(request.environ.get(httpguard.DEPTH_CHECKED)))
    except (ValueError, UnicodeDecodeError):
        raise errors.BadRequest("The body is not valid JSON. Send a JSON object such as {\"username\": ...}.") from None
    if not isinstance(data, dict):
        raise errors.BadRequest(f"The body must be a JSON object, not a JSON {type(data).__name__}.")
    request.environ[PARSED] = data
    return dict(data)
