"""The replies of the usage history and the webhook routes as msgspec Structs: their API description
(`common/http/schemas.py` renders them for /openapi.json; tests validate real replies against it)."""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType


class UsageRow(msgspec.Struct, kw_only=True):
    """One day, API key (its id; `password` for what was spent signed in with the password) or kind of work."""

    day: str | UnsetType = UNSET
    key: str | UnsetType = UNSET
    kind: Literal["classify", "job", "training"] | UnsetType = UNSET
    spent: int
    refunded: int
    net: int
    images: int


class UsageReport(msgspec.Struct, kw_only=True):
    """Tokens spent and refunded, per row of the grouping; a refund counts on the day of its spend."""

    from_: str = msgspec.field(name="from")
    to: str
    group: Literal["day", "key", "kind"]
    usage: list[UsageRow]


class WebhookSecret(msgspec.Struct, kw_only=True):
    """The secret that signs your webhooks (ImageClassify-Signature)."""

    secret: str


class Delivery(msgspec.Struct, kw_only=True):
    """One webhook event's delivery: at least once, `id` the event's id to deduplicate on."""

    id: str
    type: Literal["job.finished", "model.finished"]
    object: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    last_status: int | None
    created: float
    next_attempt: float | None


class DeliveryList(msgspec.Struct, kw_only=True):
    deliveries: list[Delivery]


REPLIES = (UsageReport, WebhookSecret, Delivery, DeliveryList)
