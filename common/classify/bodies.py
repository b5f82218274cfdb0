"""A classify request's options (JSON body, query string or form) and its JSON image sources: their checks and
their API description in one place. The images themselves are read by `common.classify.request` (their forms are
not one JSON shape, and a batch item's refusal is that item's error), by the names and bounds declared here."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import Meta

from common.core.bodies import MIN_SCORE, MODEL, Body, Fraction, ModelName, Refusals

MAX_CLASSES, MAX_TOP_K = 20, 20
MAX_REFERENCE = 4096  # a url's or uri's characters
OPTIONS = ("top_k", "min_score", "model", "classes")


class ImageSource(Body):
    """One image, by exactly one of these fields."""

    url: Annotated[str, Meta(max_length=MAX_REFERENCE, description="http(s); private addresses refused",
                             extra_json_schema={"format": "uri"})] | None = None
    image: Annotated[str, Meta(description="base64, or a data: URL",
                               extra_json_schema={"contentEncoding": "base64"})] | None = None
    uri: Annotated[str, Meta(max_length=MAX_REFERENCE, description=(
        "gs://<bucket>/... or s3://<bucket>/... in your space"))] | None = None


SOURCES = ImageSource.__struct_fields__


class ClassifyOptions(Body):
    """How to answer: how many predictions, the lowest score, the model, and classes to name the best of."""

    top_k: Annotated[int, Meta(ge=1, le=MAX_TOP_K)] = 5
    min_score: Fraction | None = None
    model: ModelName | None = None
    classes: Annotated[list[str], Meta(min_length=1, max_length=MAX_CLASSES, description=(
        "Score these classes too, and name the best one (a list, or a comma-separated string in a form)."))
    ] | None = None
    refusals: ClassVar[Refusals] = {
        "top_k": ("invalid_top_k", f"top_k must be a whole number from 1 to {MAX_TOP_K}."),
        "min_score": MIN_SCORE, "model": MODEL,
        "classes": ("invalid_classes", f"classes must be a list of 1 to {MAX_CLASSES} class names.")}
