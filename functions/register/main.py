"""The `register` function: sign up (`POST /register`) and rotate an API key (`POST /api-key`)."""

import flask
import functions_framework

from common import accounts, httpauth, web


@functions_framework.http
@web.endpoint
def register(request: flask.Request) -> flask.Response:
    if web.path_is(request, "api-key"):
        web.require_method(request, "POST")
        account = httpauth.authenticate(request, allow_key=False)
        return web.respond({"username": account.username, "api_key": accounts.rotate_key(account)})
    web.require_method(request, "POST")
    account, key = accounts.register(web.json_body(request), httpauth.client_network(request))
    return web.respond({"username": account.username, "tokens": account.tokens, "api_key": key}, 201)

