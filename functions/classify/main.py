"""The `classify` function: `POST /classify` with one image or a batch; one token per image classified."""

import flask
import functions_framework

from common import accounts, web
from common import classify as classifying


@functions_framework.http
@web.endpoint
def classify(request: flask.Request) -> flask.Response:
    web.require_method(request, "POST")
    accounts.bootstrap_admin()
    parsed = classifying.parse(request)  # bad input is refused here, before anything is spent
    account = accounts.authenticate(request, parsed.body)
    status, body = classifying.run(account, parsed, request.headers.get("Idempotency-Key"))
    return web.respond(body, status)
