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
ROUTES = web.Routes("/tokens", "/token", "/refill", "/usage", "/usage.csv", "/webhooks/<rest:rest>",
                    "/admin/<rest:rest>", hint="No such endpoint: use /tokens, /token, /refill, /usage, /usage.csv, "
                    "/webhooks/... or /admin/....")


@functions_framework.http
@web.endpoint
def tokens(request: flask.Request) -> flask.Response:
    rule, _ = ROUTES.match(request, default="/tokens")  # the function's own root answers the balance too
    if rule.startswith("/admin"):
        return adminroutes.serve(request, DEPS, operations)
    if rule.startswith("/webhooks"):
        return webhook_routes.handle(request, DEPS)
    if rule == "/refill":
        web.require_method(request, "POST")
        username, amount = admins.parse_refill(web.json_body(request))
        balance = admins.refill(httpauth.authenticate(request, deps=DEPS), username, amount, DEPS)
        return web.respond({"username": username, "tokens": balance})
    if rule.startswith("/usage"):
        web.require_method(request, "GET")
        report = usage.history(httpauth.authenticate(request, deps=DEPS), request.args, DEPS)
        if rule == "/usage":
            return web.respond(report)
        return flask.Response(usage.as_csv(report), mimetype="text/csv",
                              headers={"Content-Disposition": 'attachment; filename="usage.csv"'})
    web.require_method(request, "GET", "POST")
    account = httpauth.authenticate(request, deps=DEPS)
    # the account's tokens and what its open leases have not spent: exact when none of its requests is in flight
    return web.respond({"username": account.username, "tokens": DEPS.store.balance(account.username)})
