"""The classify endpoint's logic: read the request, charge, classify each image, refund the failures.

Accepted image sources (exactly one per image): JSON `url`, JSON `image`
(base64, optionally a `data:` URL), JSON `uri` (an object in the configured
bucket), a multipart field `file` or `image`, or a raw `image/*` body. A batch
is JSON `images: [{url|image|uri}, ...]`. Everything that can be checked
without spending is checked before the tokens are reserved.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import flask

from common import billing, errors, imagefetch, web
from common.config import settings
from common.store import Account

SOURCES = ("url", "image", "uri")
FORMS = ("Send exactly one image: JSON {\"url\": ...}, {\"image\": <base64>} or {\"uri\": \"gs://...\"}, "
         "a multipart field 'file' (or 'image'), a raw body with an image/* Content-Type, "
         "or a batch {\"images\": [{\"url\": ...}, ...]}.")
DATA_URL = re.compile(r"data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


@dataclass
class Item:
    kind: str  # url | image | uri | bytes
    value: Any


@dataclass
class ClassifyRequest:
    items: list[Item]
    batch: bool
    top_k: int = 5
    min_score: float = 0.0
    model: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


def _option(body: dict[str, Any], request: flask.Request, name: str) -> Any:
    return body[name] if name in body else request.args.get(name, request.form.get(name) if request.form else None)


def _bounded(value: Any, cast: type, low: float, high: float, refusal: errors.BadRequest) -> Any:
    """`value` (a JSON number or a query/form string) as `cast`, within [low, high]; else `refusal`."""
    if isinstance(value, bool) or (cast is int and isinstance(value, float)):
        raise refusal
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise refusal from None
    if not low <= number <= high:
        raise refusal
    return number


def _options(req: ClassifyRequest, request: flask.Request) -> None:
    top_k, min_score, model = (_option(req.body, request, n) for n in ("top_k", "min_score", "model"))
    if top_k is not None:
        req.top_k = _bounded(top_k, int, 1, 20, errors.BadRequest("top_k must be a whole number from 1 to 20.",
                                                                   code="invalid_top_k"))
    if min_score is not None:
        req.min_score = _bounded(min_score, float, 0.0, 1.0, errors.BadRequest(
            "min_score must be a number from 0 to 1.", code="invalid_min_score"))
    if model is not None:
        if not isinstance(model, str) or not model:
            raise errors.BadRequest("model must be a model name.", code="invalid_model")
        req.model = model


def _decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise errors.BadRequest("image must be a base64 string.", code="invalid_base64")
    text = DATA_URL.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise errors.BadRequest("image is not valid base64. Encode the file's bytes with standard base64.",
                                code="invalid_base64") from None
    if not data:
        raise errors.BadRequest("image is empty after base64 decoding.", code="empty_image")
    return data


def _item(obj: Any) -> Item:
    if not isinstance(obj, dict):
        raise errors.BadRequest("Each image must be a JSON object with one of url, image or uri.",
                                code="invalid_source")
    present = [k for k in SOURCES if obj.get(k) not in (None, "")]
    if len(present) != 1:
        raise errors.BadRequest(FORMS, code="invalid_source")
    kind = present[0]
    value = obj[kind]
    if kind == "image":
        return Item("bytes", _decode_base64(value))
    if not isinstance(value, str) or len(value) > 4096:
        raise errors.BadRequest(f"{kind} must be a string of at most 4096 characters.", code="invalid_source")
    if kind == "url":
        scheme = value.strip().split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise errors.UrlNotAllowed(f"Only http and https URLs can be fetched, not {scheme or 'this'}.")
    return Item(kind, value)


def parse(request: flask.Request) -> ClassifyRequest:
    """Everything the request asks for, validated before a token is reserved."""
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        files = [request.files[n] for n in ("file", "image") if n in request.files]
        if len(files) != 1:
            raise errors.BadRequest(FORMS, code="invalid_source")
        data = files[0].read()
        if not data:
            raise errors.BadRequest("The uploaded file is empty (0 bytes).", code="empty_image")
        req = ClassifyRequest([Item("bytes", data)], batch=False, body=dict(request.form))
    elif mimetype.startswith("image/") or mimetype == "application/octet-stream":
        data = web.read_body(request)
        if not data:
            raise errors.BadRequest("The request body is empty: send the image file's bytes.", code="empty_image")
        req = ClassifyRequest([Item("bytes", data)], batch=False)
    elif web.is_json(request) or not mimetype:
        body = web.json_body(request)
        if "images" in body:
            images = body["images"]
            if any(k in body for k in SOURCES):
                raise errors.BadRequest(FORMS, code="invalid_source")
            if not isinstance(images, list) or not 1 <= len(images) <= settings().max_batch:
                raise errors.BadRequest(f"images must be a list of 1 to {settings().max_batch} images.",
                                        code="invalid_batch")
            # a bad item in a batch is that item's error; the rest still run
            items = []
            for obj in images:
                try:
                    items.append(_item(obj))
                except errors.AppError as exc:
                    items.append(Item("error", exc))
            req = ClassifyRequest(items, batch=True, body=body)
        else:
            req = ClassifyRequest([_item(body)], batch=False, body=body)
    else:
        raise errors.UnsupportedMediaType(f"Content-Type {mimetype} is not accepted. {FORMS}")
    _options(req, request)
    return req


def load(item: Item) -> bytes:
    """The image bytes of one item (fetched or read from the bucket when needed)."""
    if item.kind == "bytes":
        return bytes(item.value)
    if item.kind == "url":
        return imagefetch.fetch(item.value)
    if item.kind == "uri":
        from common.storage import get_storage, key_from_uri

        storage = get_storage()
        return storage.read(key_from_uri(item.value, storage), settings().max_body_bytes)
    raise item.value  # an item refused while parsing


def _error(exc: errors.AppError) -> dict[str, Any]:
    return exc.body()["error"]


def run(account: Account, req: ClassifyRequest, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
    """Charge, classify, refund failures; the status and body of the reply."""
    from common.model import get_model

    model = get_model(req.model)  # an unknown model is a 404 before anything is spent
    chargeable = sum(1 for item in req.items if item.kind != "error")
    if chargeable == 0:
        first = next(item.value for item in req.items if item.kind == "error")
        raise first
    reservation = billing.reserve(account, chargeable, idempotency_key)
    if reservation.replay is not None:
        return int(reservation.replay["status"]), reservation.replay["body"]
    results: list[dict[str, Any]] = []
    used = 0
    try:
        for index, item in enumerate(req.items):
            try:
                predictions = model.top(model.predict(load(item)), req.top_k, req.min_score)
                results.append({"index": index, "predictions": predictions})
                used += 1
            except errors.AppError as exc:
                results.append({"index": index, "error": _error(exc)})
    except BaseException:
        reservation.settle(used)
        reservation.remember(500, errors.AppError("The request failed; it was not charged. Retry it with a "
                                                  "new Idempotency-Key.").body())
        raise
    status, body = _reply(model.name, req, results)
    body["tokens_remaining"] = reservation.settle(used)
    reservation.remember(status, body)
    return status, body


def _reply(model: str, req: ClassifyRequest, results: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    if req.batch:
        return 200, {"model": model, "results": results}
    only = results[0]
    if "error" in only:
        return int(only["error"]["status"]), {"error": only["error"]}
    return 200, {"model": model, "predictions": only["predictions"]}

