"""The `classify` function: `POST /classify` with one image or a batch; one token per image classified."""

import flask
import functions_framework

from common import classify as classifying
from common import classify_request, httpauth, web


@functions_framework.http
@web.endpoint
def classify(request: flask.Request) -> flask.Response:
    web.require_method(request, "POST")
    parsed = classify_request.parse(request)  # bad input is refused here, before anything is spent
    account = httpauth.authenticate(request)
    status, body = classifying.run(account, parsed, request.headers.get("Idempotency-Key"))
    return web.respond(body, status)
