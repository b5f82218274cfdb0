"""What a key's scope lets it call: the one table of the routes a `classify`-scoped key may use.

A key of scope `all` (and a password) may do everything its account may. A `classify` key may classify, read
the balance and read its own jobs; every other route (keys, files, models, creating jobs, training, the
password, the account, admin routes, and any route added later) answers 403 `insufficient_scope`. The check
runs in `auth.authenticate`, for the function serving the request (`web.endpoint` records its name), so a
handler never checks a scope itself and a route nobody listed here is closed to `classify` keys.
"""

from __future__ import annotations

from collections.abc import Callable

import flask

from common.core import errors

ALL, CLASSIFY = "all", "classify"
FUNCTION = "imageclassify.function"  # the environ entry `web.endpoint` sets: the function serving the request
KEY_HASH = "imageclassify.key_hash"  # the environ entry `auth` sets: the hash of the key that authenticated it


def _anything(request: flask.Request) -> bool:
    return True


def _the_balance(request: flask.Request) -> bool:
    """GET /tokens or POST /token, and nothing else the tokens function serves (refill, usage, webhooks, admin)."""
    return request.path.rstrip("/").rsplit("/", 1)[-1] in ("token", "tokens")


# function -> (methods, and which of its paths) a `classify` key may call
CLASSIFY_MAY: dict[str, tuple[frozenset[str], Callable[[flask.Request], bool]]] = {
    "classify": (frozenset({"POST"}), _anything),  # /classify, /upload, /predict
    "tokens": (frozenset({"GET", "POST"}), _the_balance),  # the balance: GET /tokens, POST /token
    "sort_job": (frozenset({"GET"}), _anything),  # GET /jobs/<id>: its own jobs, as for any key
}


def allows(scope: str, request: flask.Request) -> bool:
    if scope == ALL:
        return True
    may = CLASSIFY_MAY.get(str(request.environ.get(FUNCTION, ""))) if scope == CLASSIFY else None
    return may is not None and request.method in may[0] and may[1](request)


def check(scope: str, request: flask.Request) -> None:
    """Refuse (403 `insufficient_scope`) a request its key's scope does not allow."""
    if not allows(scope, request):
        raise errors.Forbidden(
            f"This API key's scope is {scope!r}: it may classify, read the balance and read its jobs only. "
            "This request needs a key of scope 'all' (make one with POST /keys and {\"scope\": \"all\"}) or your "
            "password.", code="insufficient_scope")
