"""The `tokens` function: the balance (`GET /tokens`, `POST /token`), admin refills (`POST /refill`), the usage
history (`GET /usage`, `GET /usage.csv`), the webhook secret and deliveries (`/webhooks/...`) and the admin routes
of the console (`/admin/...`, common/http/admin.py)."""

import flask
import functions_framework

from common import bootstrap
from common.accounts import admins, usage
from common.http import admin as adminroutes
from common.http import auth as httpauth
from common.http import web, webhook_routes
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
    if web.path_is(request, "usage", "usage.csv"):
        web.require_method(request, "GET")
        report = usage.history(httpauth.authenticate(request, deps=DEPS), request.args, DEPS)
        if not web.path_is(request, "usage.csv"):
            return web.respond(report)
        return flask.Response(usage.as_csv(report), mimetype="text/csv",
                              headers={"Content-Disposition": 'attachment; filename="usage.csv"'})
    if "webhooks" in request.path.split("/"):
        return webhook_routes.handle(request, DEPS)
    web.require_method(request, "GET", "POST")
    account = httpauth.authenticate(request, deps=DEPS)
    # the account's tokens and what its open leases have not spent: exact when none of its requests is in flight
    return web.respond({"username": account.username, "tokens": DEPS.store.balance(account.username)})
