"""The `tokens` function: the balance (`GET /tokens`, `POST /token`), admin refills (`POST /refill`) and the admin
routes of the console (`/admin/...`, common/http/admin.py)."""

import flask
import functions_framework

from common import bootstrap
from common.accounts import admins
from common.http import admin as adminroutes
from common.http import auth as httpauth
from common.http import web
from common.ops import operations

DEPS = bootstrap.deps()  # built once per process, handed to the services


@functions_framework.http
@web.endpoint
def tokens(request: flask.Request) -> flask.Response:
    if "admin" in request.path.strip("/").split("/")[:2]:
        return adminroutes.serve(request, DEPS, operations)
    if web.path_is(request, "refill"):
        web.require_method(request, "POST")
        username, amount = admins.parse_refill(web.json_body(request))
        balance = admins.refill(httpauth.authenticate(request, deps=DEPS), username, amount, DEPS)
        return web.respond({"username": username, "tokens": balance})
    web.require_method(request, "GET", "POST")
    account = httpauth.authenticate(request, deps=DEPS)
    # the account's tokens and what its open leases have not spent: exact when none of its requests is in flight
    return web.respond({"username": account.username, "tokens": DEPS.store.balance(account.username)})
