"""The `tokens` function: the balance (`GET /tokens`, `POST /token`) and admin refills (`POST /refill`)."""

from typing import Any

import flask
import functions_framework

from common import accounts, web


@functions_framework.http
@web.endpoint
def tokens(request: flask.Request) -> flask.Response:
    accounts.bootstrap_admin()
    if web.path_is(request, "refill"):
        web.require_method(request, "POST")
        refill = web.json_body(request)
        seed_form = "user" in refill or "refill" in refill
        admin = accounts.authenticate(request, refill if seed_form else None)
        username, amount = accounts.parse_refill(refill)
        balance = accounts.refill(admin, username, amount)
        return web.respond({"username": username, "tokens": balance})
    web.require_method(request, "GET", "POST")
    body: dict[str, Any] | None = web.json_body(request, required=False) if request.method == "POST" else None
    account = accounts.authenticate(request, body)
    return web.respond({"username": account.username, "tokens": account.tokens})
