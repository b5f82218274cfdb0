"""The `models` function: train, list, inspect and delete the caller's custom models.

`POST /models {name, source, augment?}` -> 202 + `Location: /models/<name>`; `GET /models`;
`GET /models/<name>`; `GET /models/<name>/confusion.png`; `DELETE /models/<name>` -> 204.
The training itself runs in the queue worker (`sort_worker`).
"""

import flask
import functions_framework

from common import bootstrap
from common.http import auth as httpauth
from common.http import web
from common.training import service as custom_models

DEPS = bootstrap.deps()  # built once per process, handed to the services
ROUTES = web.Routes("/models", "/models/<name>", "/models/<name>/confusion.png",
                    hint="No such endpoint: use /models, /models/<name> or /models/<name>/confusion.png.")


@functions_framework.http
@web.endpoint
def models(request: flask.Request) -> flask.Response:
    rule, arguments = ROUTES.match(request)
    if rule == "/models":
        web.require_method(request, "GET", "POST")
        if request.method == "GET":
            return web.respond(custom_models.listing(httpauth.authenticate(request, deps=DEPS), DEPS))
        body = web.json_body(request)  # bad input is refused before the caller is looked up
        record = custom_models.create(httpauth.authenticate(request, deps=DEPS), body, DEPS)
        return web.respond(custom_models.describe(record, DEPS, metrics=False), 202,
                           {"Location": f"{request.path.rstrip('/')}/{record.name}"})
    name = arguments["name"]
    if rule.endswith("confusion.png"):
        web.require_method(request, "GET")
        png = custom_models.confusion_png(httpauth.authenticate(request, deps=DEPS), name, DEPS)
        return flask.Response(png, mimetype="image/png")
    web.require_method(request, "GET", "DELETE")
    account = httpauth.authenticate(request, deps=DEPS)
    if request.method == "DELETE":
        custom_models.delete(account, name, DEPS)
        return flask.Response(status=204)
    return web.respond(custom_models.describe(custom_models.get(account, name, DEPS), DEPS))
