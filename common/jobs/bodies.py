"""The body of POST /jobs: its checks and its API description in one place (the classes' names and count are
checked against the chosen model by `common.jobs.service`)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import UNSET, Meta, UnsetType

from common.core.bodies import MIN_SCORE, MODEL, WEBHOOK, Body, Fraction, ModelName, Refusals, Webhook

MAX_CLASSES = 20


class JobRequest(Body):
    """Sort a folder of your space into one folder per class."""

    classes: Annotated[list[str], Meta(min_length=1, examples=[["dog", "food"]], description=(
        f"At most {MAX_CLASSES} with a built-in model; a custom model's own labels (all of them by default)."))
    ] | None = None
    source: Annotated[str, Meta(description="A folder of your space.")] = "all/"
    model: ModelName | None = None
    min_score: Annotated[Fraction, Meta(description="The service's default (0.3) when left out.")] | UnsetType = UNSET
    webhook: Webhook | None = None
    refusals: ClassVar[Refusals] = {
        "classes": ("invalid_classes", "classes must be a non-empty list of class names, e.g. [\"dog\", \"food\"]."),
        "source": ("invalid_source", "source must be a string such as \"all/\"."),
        "model": MODEL, "min_score": MIN_SCORE, "webhook": WEBHOOK}
