"""The seeds' classify routes, metered like `/classify`: `POST /upload` (seed 001) and `POST /predict` (seeds 002, 003).

Their users liked one thing about them: one multipart field in, a short answer
out. That is kept, field name and reply shape included, so the seeds' clients
keep working. What was wrong is fixed: every refusal is the project's error
envelope with a real status (the seeds answered 200), the image is charged
like any other, and the remaining balance travels in a header
(`X-Tokens-Remaining`) because the seeds' reply shapes have no room for it.
"""

from __future__ import annotations

from typing import Any

import flask

from common.classify.request import ClassifyRequest, Item
from common.core import errors
from common.http import web
from common.http.classify_parse import one_upload

FIELDS = {"upload": "image", "predict": "file"}  # route -> the one multipart field its seed reads
TOP = 3  # both seeds answer with their model's top three
ROUTES = web.Routes(*(f"/{name}" for name in FIELDS), hint="No such endpoint: the seeds' routes are /upload and "
                    "/predict.")


def route_of(request: flask.Request) -> str | None:
    """`upload` or `predict` when the request is for a seed route, else None."""
    rule, _ = ROUTES.match(request, default="/")
    return rule[1:] or None


def parse(request: flask.Request, route: str) -> ClassifyRequest:
    """The one image in the route's multipart field (and an optional `model` field), before anything is spent."""
    field = FIELDS[route]
    how = f"Send the image as multipart/form-data in the field '{field}' (curl -F {field}=@photo.jpg)."
    if request.mimetype != "multipart/form-data":
        sent = request.mimetype or "an empty body"
        raise errors.UnsupportedMediaType(f"/{route} takes multipart/form-data, not {sent}. {how}")
    upload = one_upload(request, (field,))
    if upload is None:
        raise errors.BadRequest(f"No file in the field '{field}'. {how}", code="missing_field")
    data = upload.read()
    if not data:
        raise errors.BadRequest("The uploaded file is empty (0 bytes).", code="empty_image")
    model = request.form.get("model") or None
    if model is not None and len(model) > 64:
        raise errors.BadRequest("model must be a model name of at most 64 characters.", code="invalid_model")
    return ClassifyRequest([Item("bytes", data)], batch=False, top_k=TOP, model=model)


def is_custom(model: str | None) -> bool:
    """Whether `model` names a user's own model rather than a built-in one (seed 003's shape is for those)."""
    if model is None:
        return False
    from common.models.model import available

    return model not in available()


def shape(route: str, body: dict[str, Any], custom: bool) -> Any:
    """The seed's reply for a `/classify` reply body of one image."""
    predictions = body["predictions"][:TOP]
    if route == "upload":
        return {f"prediction_{i}": {"predicted_label": p["label"], "confidence_level": p["score"]}
                for i, p in enumerate(predictions, start=1)}
    if custom:
        best = predictions[0] if predictions else {"label": None, "score": 0.0}
        return {"predicted_class": best["label"], "confidence_score": best["score"]}
    return [{"label": p["label"], "score": p["score"]} for p in predictions]


def respond(route: str, request: ClassifyRequest, status: int, body: dict[str, Any]) -> flask.Response:
    """The seed-shaped reply; errors keep the project's envelope and status."""
    if status != 200 or "predictions" not in body:
        return web.respond(body, status)
    return web.respond(shape(route, body, is_custom(request.model)), status, {
        "X-Tokens-Remaining": str(body["tokens_remaining"]), "X-Model": str(body["model"])})
