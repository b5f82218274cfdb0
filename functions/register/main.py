"""The `register` function: sign up (`POST /register`), rotate the API key (`POST /api-key`), the web
console's sessions (`POST /sessions` signs in with a key of its own, `DELETE /sessions/<id>` signs out), named
keys (`POST /keys`, `GET /keys`, `DELETE /keys/<id>`), `POST /password` and `DELETE /account`."""

import flask
import functions_framework

from common import bootstrap
from common.accounts import keys as named_keys
from common.accounts import leaving
from common.accounts import service as accounts
from common.http import auth as httpauth
from common.http import web

DEPS = bootstrap.deps()  # built once per process, handed to the services
ROUTES = web.Routes("/register", "/api-key", "/sessions", "/sessions/<id>", "/keys", "/keys/<id>", "/password",
                    "/account", hint="No such endpoint: use /register, /api-key, /sessions[/<id>], /keys[/<id>], "
                    "/password or /account.")


@functions_framework.http
@web.endpoint
def register(request: flask.Request) -> flask.Response:
    rule, arguments = ROUTES.match(request, default="/register")  # the function's own root signs up too
    if rule == "/api-key":
        web.require_method(request, "POST")
        account = httpauth.authenticate(request, allow_key=False, deps=DEPS)
        return web.respond({"username": account.username, "api_key": accounts.rotate_key(account, DEPS)})
    if rule.startswith("/sessions"):
        return sessions(request, arguments)
    if rule.startswith("/keys"):
        return keys(request, arguments)
    if rule in ("/password", "/account"):
        return leave(request, rule)
    web.require_method(request, "POST")
    account, key = accounts.register(web.json_body(request), httpauth.client_network(request), DEPS)
    return web.respond({"username": account.username, "tokens": account.tokens, "api_key": key}, 201)


def sessions(request: flask.Request, arguments: dict[str, str]) -> flask.Response:
    if "id" not in arguments:
        web.require_method(request, "POST")
        account = httpauth.authenticate(request, allow_key=False, deps=DEPS)
        key, record = accounts.open_session(account, DEPS)
        return web.respond({**record, "key": key, "tokens": account.tokens}, 201)  # the key, shown once
    web.require_method(request, "DELETE")
    accounts.close_session(httpauth.authenticate(request, deps=DEPS), arguments["id"], DEPS)
    return flask.Response(status=204)


def keys(request: flask.Request, arguments: dict[str, str]) -> flask.Response:
    if "id" not in arguments:
        web.require_method(request, "GET", "POST")
        account = httpauth.authenticate(request, deps=DEPS)
        if request.method == "GET":
            return web.respond(named_keys.listing(account, DEPS))
        return web.respond(named_keys.create(account, web.json_body(request), DEPS), 201)  # the key, shown once
    web.require_method(request, "DELETE")
    named_keys.revoke(httpauth.authenticate(request, deps=DEPS), arguments["id"], DEPS)
    return flask.Response(status=204)


def leave(request: flask.Request, rule: str) -> flask.Response:
    """`POST /password` and `DELETE /account`, each confirmed with the current password in the body."""
    changing = rule == "/password"
    web.require_method(request, "POST" if changing else "DELETE")
    account, network = httpauth.authenticate(request, deps=DEPS), httpauth.client_network(request)
    if changing:
        leaving.change_password(account, web.json_body(request), network, httpauth.key_hash_of(request), DEPS)
        return flask.Response(status=204)
    leaving.delete_account(account, web.json_body(request), network, DEPS)
    return web.respond({"username": account.username, "status": "deleting"}, 202)
