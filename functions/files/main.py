"""The `files` function: the caller's space of the bucket.

`PUT /files/<path>` (raw image body) -> 201 `{path, size}`; `GET /files?prefix=&page_token=&limit=` ->
`{files: [{path, size}], next}`; `GET /files/<path>` -> the bytes; `DELETE /files/<path>` -> 204;
`POST /files/<path>` `{"size": n}` -> 201 `{path, max_bytes, expires_in, upload: {url, fields}}` (S3 only: a form
to upload a larger image than a function URL takes straight to the bucket).
"""

import flask
import functions_framework

from common import bootstrap
from common.files import service as files
from common.http import auth as httpauth
from common.http import web

DEPS = bootstrap.deps()  # built once per process, handed to the services
ROUTES = web.Routes("/files", "/files/<rest:path>", hint="No such endpoint: use /files or /files/<path>.")


@functions_framework.http
@web.endpoint
def files_api(request: flask.Request) -> flask.Response:
    web.require_method(request, "GET", "PUT", "DELETE", "POST")
    account = httpauth.authenticate(request, deps=DEPS)
    path = ROUTES.match(request)[1].get("path", "")
    if not path:
        web.require_method(request, "GET")
        limit, page = request.args.get("limit", ""), request.args.get("next") or request.args.get("page_token")
        return web.respond(files.listing(account, request.args.get("prefix", ""), page,
                                         int(limit) if limit.isdigit() else files.PAGE_MAX, DEPS))
    if request.method == "POST":
        return web.respond(files.upload_form(account, path, web.json_body(request).get("size"), DEPS), 201)
    if request.method == "PUT":
        return web.respond(files.put(account, path, web.read_body(request), DEPS), 201)
    if request.method == "DELETE":
        files.delete(account, path, DEPS)
        return flask.Response(status=204)
    data, media_type = files.read(account, path, DEPS)
    return flask.Response(data, mimetype=media_type, headers={"Content-Security-Policy": "sandbox"})
