"""What a classify request asks for, validated before a token is reserved (read from HTTP by
`common.http.classify_parse`).

Accepted image sources (exactly one per image): JSON `url`, JSON `image`
(base64, optionally a `data:` URL), JSON `uri` (an object in the configured
bucket), a multipart field `file` or `image`, or a raw `image/*` body. A batch
is JSON `images: [{url|image|uri}, ...]`; an item of a batch that is refused
here is that item's error (the rest still run, and it is not charged).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.core import errors
from common.models import classnames

SOURCES = ("url", "image", "uri")
FORMS = ("Send exactly one image: JSON {\"url\": ...}, {\"image\": <base64>} or {\"uri\": \"gs://...\"}, "
         "a multipart field 'file' (or 'image'), a raw body with an image/* Content-Type, "
         "or a batch {\"images\": [{\"url\": ...}, ...]}.")
MAX_CLASSES = 20
DATA_URL = re.compile(r"data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


@dataclass
class Item:
    kind: str  # url | uri | bytes
    value: Any = None
    refusal: errors.AppError | None = None  # a batch item refused while parsing


@dataclass
class ClassifyRequest:
    items: list[Item]
    batch: bool
    top_k: int = 5
    min_score: float | None = None
    classes: list[str] | None = None  # score these classes too, and name the best one (the CLI's `sort`)
    model: str | None = None


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


def apply_options(req: ClassifyRequest, option: Callable[[str], Any]) -> None:
    """Validate the options (`option(name)`: the JSON body's, else the query string's or the form's) into `req`."""
    top_k, min_score, model, classes = (option(n) for n in ("top_k", "min_score", "model", "classes"))
    if classes is not None:
        names = classes.split(",") if isinstance(classes, str) else classes
        if not isinstance(names, list) or not 1 <= len(names) <= MAX_CLASSES:
            raise errors.BadRequest(f"classes must be a list of 1 to {MAX_CLASSES} class names.",
                                    code="invalid_classes")
        req.classes = classnames.unique(names)
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
    text = value.strip()
    prefix = DATA_URL.match(text)  # only at the start: a search would scan every image's whole text
    if prefix:
        text = text[prefix.end():]
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


def from_json(body: dict[str, Any], max_batch: int) -> ClassifyRequest:
    """A JSON body's images: one image (`url`, `image` or `uri`) or a batch (`images`) of 1 to `max_batch`."""
    if "images" not in body:
        return ClassifyRequest([_item(body)], batch=False)
    images = body["images"]
    if any(k in body for k in SOURCES):
        raise errors.BadRequest(FORMS, code="invalid_source")
    if not isinstance(images, list) or not 1 <= len(images) <= max_batch:
        raise errors.BadRequest(f"images must be a list of 1 to {max_batch} images.", code="invalid_batch")
    # a bad item in a batch is that item's error; the rest still run
    return ClassifyRequest([_batch_item(obj) for obj in images], batch=True)


def one_image(data: bytes, empty: str) -> ClassifyRequest:
    """A request for the one image in `data` (an upload or a raw body); `empty` says what to send when it is empty."""
    if not data:
        raise errors.BadRequest(empty, code="empty_image")
    return ClassifyRequest([Item("bytes", data)], batch=False)


def _batch_item(obj: Any) -> Item:
    try:
        return _item(obj)
    except errors.AppError as exc:
        return Item("refused", refusal=exc)
