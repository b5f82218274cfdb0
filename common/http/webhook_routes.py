"""The webhook routes of the `tokens` function: the signing secret and the delivery log of the caller's account."""

from __future__ import annotations

import flask

from common.accounts import webhooks
from common.adapters.deps import Deps
from common.core import errors
from common.http import auth as httpauth
from common.http import web

ROUTES = web.Routes("/webhooks/secret", "/webhooks/deliveries", "/webhooks/deliveries/<id>",
                    hint="No such endpoint: use /webhooks/secret or /webhooks/deliveries[/<id>].")


def handle(request: flask.Request, deps: Deps) -> flask.Response:
    rule, arguments = ROUTES.match(request)
    if rule == "/webhooks/secret":
        web.require_method(request, "GET", "POST")  # POST: a new secret; the old one stops signing at once
        account = httpauth.authenticate(request, deps=deps)
        return web.respond({"secret": webhooks.secret(account.username, deps, rotate=request.method == "POST")})
    web.require_method(request, "GET")
    account = httpauth.authenticate(request, deps=deps)
    if rule == "/webhooks/deliveries":
        return web.respond({"deliveries": deps.store.deliveries_of(account.username)})
    found = deps.store.delivery_of(account.username, arguments["id"][:200])
    if found is None:  # another account's is a 404, exactly like a missing one
        raise errors.NotFound(f"There is no webhook delivery {arguments['id'][:80]!r} of yours.",
                              code="unknown_delivery")
    return web.respond(found)
