"""The body of POST /models: its checks and its API description in one place (no numpy: the web function
renders it for /openapi.json)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from msgspec import Meta

from common.core.bodies import WEBHOOK, Body, Refusals, Webhook
from common.models.layout import MODEL_NAME

DEFAULT_VIEWS, MAX_VIEWS = 2, 8
NAME_RULE = re.compile(rf"^{MODEL_NAME.pattern}(?!\n)$")  # `(?!\n)`: Python's `$` matches before a final newline


class ModelRequest(Body):
    """Train a model on a folder of your space (1 token per image)."""

    name: Annotated[str, Meta(pattern=NAME_RULE.pattern, examples=["my-pets"])]
    source: Annotated[str, Meta(description="A folder of your space; its subfolders are the classes.")] = ""
    augment: Annotated[int, Meta(ge=0, le=MAX_VIEWS, description="Extra views per training image.")
                       ] | None = None
    backbone: Annotated[str, Meta(description="The built-in model whose features the head is trained on.",
                                  examples=["efficientnet_lite0", "efficientnet_lite2"])] | None = None
    webhook: Webhook | None = None
    refusals: ClassVar[Refusals] = {
        "name": ("invalid_name", "name must be 2 to 40 characters: lowercase letters, digits, '_' and '-', "
                                 "starting with a letter or digit (e.g. \"my-pets\")."),
        "source": ("invalid_source", "source must be a string such as \"all/\"."),
        "augment": ("bad_augment", f"augment must be a whole number from 0 to {MAX_VIEWS} (extra views per "
                                   "training image); got {value!r}."),
        "backbone": ("invalid_backbone", "backbone must be the name of a built-in model, e.g. \"efficientnet_lite2\"."),
        "webhook": WEBHOOK}

    @property
    def views(self) -> int:
        return DEFAULT_VIEWS if self.augment is None else self.augment
