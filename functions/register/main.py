"""The `register` function: sign up (`POST /register`), rotate the API key (`POST /api-key`), and the web
console's sessions (`POST /sessions` signs in with a key of its own, `DELETE /sessions/<id>` signs out)."""

import flask
import functions_framework

from common import bootstrap
from common.accounts import service as accounts
from common.http import auth as httpauth
from common.http import web

DEPS = bootstrap.deps()  # built once per process, handed to the services
SESSIONS = web.Routes("/sessions", "/sessions/<id>", hint="No such endpoint: use /sessions or /sessions/<id>.")


@functions_framework.http
@web.endpoint
def register(request: flask.Request) -> flask.Response:
    if web.path_is(request, "api-key"):
        web.require_method(request, "POST")
        account = httpauth.authenticate(request, allow_key=False, deps=DEPS)
        return web.respond({"username": account.username, "api_key": accounts.rotate_key(account, DEPS)})
    if "sessions" in request.path.strip("/").split("/"):
        return sessions(request)
    web.require_method(request, "POST")
    account, key = accounts.register(web.json_body(request), httpauth.client_network(request), DEPS)
    return web.respond({"username": account.username, "tokens": account.tokens, "api_key": key}, 201)


def sessions(request: flask.Request) -> flask.Response:
    _, arguments = SESSIONS.match(request)
    if "id" not in arguments:
        web.require_method(request, "POST")
        account = httpauth.authenticate(request, allow_key=False, deps=DEPS)
        key, record = accounts.open_session(account, DEPS)
        return web.respond({**record, "key": key, "tokens": account.tokens}, 201)  # the key, shown once
    web.require_method(request, "DELETE")
    accounts.close_session(httpauth.authenticate(request, deps=DEPS), arguments["id"], DEPS)
    return flask.Response(status=204)
