"""What the `web` function serves: the console's files, its endpoint map, and the API description.

The console is plain files (HTML, CSS, JS) read once from the function's own
`assets/` folder into memory and served under `/assets/` (Flask keeps `/static/`
for itself): only files that are there can be served, so a request path never
reaches the file system. Every reply carries a strict
Content-Security-Policy (scripts and styles from this origin only, no inline
code), so text that slips into the page can never run.
"""

from __future__ import annotations

import functools
import json
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

import flask

from common.core import errors
from common.core.config import settings
from common.http import envelope
from common.http.openapi import spec

PAGES = {"": "index.html", "docs": "docs.html"}  # first path segment -> the page served there
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}


@functools.cache
def assets(folder: Path) -> dict[str, tuple[bytes, str]]:
    """Every file of the console by name, with its Content-Type (read once per instance)."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            found[path.name] = (path.read_bytes(), f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
    return found


def endpoints() -> dict[str, str]:
    """Route group (first path segment) -> base URL of the function serving it; '' = this origin."""
    groups = {path.strip("/").split("/", 1)[0] for path, item in spec()["paths"].items()
              if not any("web" in op.get("tags", ()) for op in item.values())}
    configured = dict(settings().http.api_endpoints)
    return {group: configured.get(group, "") for group in sorted(groups)}


def policy() -> str:
    """The Content-Security-Policy: this origin only, plus the configured API origins for fetch."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, endpoints().values()) if p.netloc})
    connect = " ".join(["connect-src 'self'", *origins])
    return "; ".join([
        "default-src 'self'", "img-src 'self' blob: data:", connect,
        "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'none'"])


def send(body: bytes, content_type: str, cache: str = "no-cache") -> flask.Response:
    response = flask.Response(body, content_type=content_type)
    response.headers.update({
        "Content-Security-Policy": policy(), "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY", "Cache-Control": cache})
    return response


def serve(request: flask.Request, folder: Path) -> flask.Response:
    """The reply for any path the web function owns."""
    if request.method not in ("GET", "HEAD"):
        raise envelope.MethodNotAllowed(f"{request.method} is not supported on {request.path}; use GET.",
                                      headers={"Allow": "GET, HEAD"})
    first, _, rest = request.path.strip("/").partition("/")
    files = assets(folder)
    if first in PAGES and not rest:
        return send(*files[PAGES[first]])
    if first == "assets" and rest in files:
        return send(*files[rest])
    if first == "config.json" and not rest:
        return send(json.dumps({"endpoints": endpoints()}).encode(), "application/json")
    if first == "openapi.json" and not rest:
        return send(json.dumps(spec(), indent=1).encode(), "application/json")
    raise errors.NotFound(f"There is no page at {request.path[:100]!r}. The console is at /, the API description "
                          "at /docs.", code="not_found")
