"""Request bodies as typed objects: one msgspec `Struct` per body is both the check and the API description.

A feature declares its body once (its fields, types and bounds as `msgspec.Meta`); the service converts the
parsed JSON object into it with `convert`, and `common/http/schemas.py` renders the same type as JSON Schema
for `/openapi.json`, so a limit is written in one place. msgspec was chosen over pydantic for the functions'
cold start and bundle size. A refusal keeps the contract's clear message: each Struct maps a field to the
(code, message) of the 400 it has always answered, in its `refusals` class variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec
from msgspec import Meta

from common.core import errors

Refusals = dict[str, tuple[str | None, str]]
# fields several bodies share (POST /jobs, /classify), with their refusals
ModelName = Annotated[str, Meta(min_length=1, description="The caller's own model first, then the built-ins.",
                                examples=["efficientnet_lite0"])]
Fraction = Annotated[float, Meta(ge=0, le=1)]
MODEL = ("invalid_model", "model must be a model name.")
MIN_SCORE = ("invalid_min_score", "min_score must be a number from 0 to 1.")
Webhook = Annotated[str, Meta(min_length=1, max_length=2048, examples=["https://example.com/hooks/imageclassify"],
                              description="Where the end is POSTed, signed (see GET /webhooks/secret): https, "
                                          "a public address.")]
WEBHOOK = ("invalid_webhook", "webhook must be an https URL of your own server, e.g. "
                              "\"https://example.com/hooks/imageclassify\".")
FIELD = re.compile(r"`\$\.([A-Za-z_]\w*)|missing required field `([A-Za-z_]\w*)`")


class Body(msgspec.Struct, kw_only=True):
    """A request body: unknown fields are ignored (e.g. `is_admin` at sign-up), as the contract says."""

    refusals: ClassVar[Refusals] = {}


B = TypeVar("B", bound=Body)


def convert(kind: type[B], data: Mapping[str, Any], *, strict: bool = True) -> B:
    """`data` (a parsed JSON object) as a `kind`, or the 400 its first wrong field answers.

    `strict=False` also reads numbers written as strings (a query string's or a form's options)."""
    try:
        return msgspec.convert(data, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise refusal(kind, str(exc), data) from None


class Shown:
    """A value sent, as a refusal echoes it (`{value!r}`): cut short, so a 4 MB string is not sent back."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        text = repr(self.value)
        return text if len(text) <= 80 else text[:77] + "..."


def refusal(kind: type[Body], detail: str, data: Mapping[str, Any]) -> errors.BadRequest:
    """The 400 for msgspec's `detail` ("Expected `int` >= 1 - at `$.amount`"): the field's own (code, message)
    when the Struct names one (`{value!r}` in it is the value sent), else msgspec's wording with the field."""
    found = FIELD.search(detail)
    field = next((g for g in found.groups() if g), "") if found else ""
    if field in kind.refusals:
        code, message = kind.refusals[field]
        return errors.BadRequest(message.format(value=Shown(data.get(field))), code=code)
    return errors.BadRequest(f"{field or 'The body'}: {detail.split(' - at ')[0]}.", code="invalid_body")
