"""A classify request read from HTTP: the multipart form, the raw image body or the JSON body, and the options
from the body, the query string or the form. What it asks for is validated by `common.classify.request`."""

from __future__ import annotations

from typing import Any

import flask

from common.classify.request import FORMS, ClassifyRequest, apply_options, from_json, one_image
from common.core import errors
from common.core.config import settings
from common.http import web


def one_upload(request: flask.Request, fields: tuple[str, ...]) -> Any:
    """The one file a multipart form carries, when it is in one of `fields` (else None); a form with more than
    one file is a 400. A part a browser sends for a file input left empty (no file name) is no file."""
    sent = [(name, part) for name, parts in request.files.lists() for part in parts if part.filename]
    if len(sent) > 1:
        raise errors.BadRequest(f"Send exactly one file in a form (this one has {len(sent)}); for several images "
                                "POST /classify with a JSON list of images.", code="invalid_source")
    return next((part for name, part in sent if name in fields), None)


def parse(request: flask.Request) -> ClassifyRequest:
    """Everything the request asks for, validated before a token is reserved."""
    mimetype = request.mimetype or ""
    body: dict[str, Any]
    if mimetype == "multipart/form-data":
        upload = one_upload(request, ("file", "image"))
        if upload is None:
            raise errors.BadRequest(FORMS, code="invalid_source")
        req, body = one_image(upload.read(), "The uploaded file is empty (0 bytes)."), dict(request.form)
    elif mimetype.startswith("image/") or mimetype == "application/octet-stream":
        req, body = one_image(web.read_body(request), "The request body is empty: send the image file's bytes."), {}
    elif web.is_json(request) or not mimetype:
        body = web.json_body(request)
        req = from_json(body, settings().http.max_batch)
    else:
        raise errors.UnsupportedMediaType(f"Content-Type {mimetype} is not accepted. {FORMS}")
    # a form's fields are in `body` already; any other body has no form to read (reading it would parse nothing)
    apply_options(req, lambda name: body[name] if name in body else request.args.get(name))
    return req
