"""The `classify` function: `POST /classify` with one image or a batch; one token per image classified.

Also the seeds' routes, metered the same way: `POST /upload` (multipart `image`) and `POST /predict`
(multipart `file`), answered in their seed's shape (see common/http/seed_routes.py).
"""

import flask
import functions_framework

from common import bootstrap
from common.classify import service as classifying
from common.http import auth as httpauth
from common.http import classify_parse, envelope, seed_routes, web
from common.models import model

model.warm()  # at start-up, not in the first request
DEPS = bootstrap.deps()  # built once per process, handed to the services


@functions_framework.http
@web.endpoint
def classify(request: flask.Request) -> flask.Response:
    web.require_method(request, "POST")
    seed = seed_routes.route_of(request)
    # bad input is refused here, before anything is spent
    parsed = seed_routes.parse(request, seed) if seed else classify_parse.parse(request)
    account = httpauth.authenticate(request, deps=DEPS)
    status, body = classifying.run(account, parsed, request.headers.get("Idempotency-Key"), DEPS, envelope.present)
    if seed:
        return seed_routes.respond(seed, parsed, status, body)
    return web.respond(body, status)
