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

from common.classify.bodies import MAX_REFERENCE, OPTIONS, SOURCES, ClassifyOptions
from common.core import bodies, errors
from common.models import classnames

FORMS = ("Send exactly one image: JSON {\"url\": ...}, {\"image\": <base64>} or {\"uri\": \"gs://...\"}, "
         "a multipart field 'file' (or 'image'), a raw body with an image/* Content-Type, "
         "or a batch {\"images\": [{\"url\": ...}, ...]}.")
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


def apply_options(req: ClassifyRequest, option: Callable[[str], Any]) -> None:
    """Validate the options (`option(name)`: the JSON body's, else the query string's or the form's) into `req`;
    a form's or query's numbers are strings, and its classes one comma-separated string."""
    given = {name: value for name in OPTIONS if (value := option(name)) is not None}
    if isinstance(given.get("classes"), str):
        given["classes"] = given["classes"].split(",")
    options = bodies.convert(ClassifyOptions, given, strict=False)
    req.top_k, req.min_score, req.model = options.top_k, options.min_score, options.model
    if options.classes is not None:
        req.classes = classnames.unique(options.classes)


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
    if not isinstance(value, str) or len(value) > MAX_REFERENCE:
        raise errors.BadRequest(f"{kind} must be a string of at most {MAX_REFERENCE} characters.",
                                code="invalid_source")
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
