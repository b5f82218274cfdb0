"""The `tokens` function: the balance (`GET /tokens`, `POST /token`) and admin refills (`POST /refill`)."""

import flask
import functions_framework

from common.accounts import admins
from common.http import auth as httpauth
from common.http import web


@functions_framework.http
@web.endpoint
def tokens(request: flask.Request) -> flask.Response:
    if web.path_is(request, "refill"):
        web.require_method(request, "POST")
        username, amount = admins.parse_refill(web.json_body(request))
        balance = admins.refill(httpauth.authenticate(request), username, amount)
        return web.respond({"username": username, "tokens": balance})
    web.require_method(request, "GET", "POST")
    account = httpauth.authenticate(request)
    return web.respond({"username": account.username, "tokens": account.tokens})
