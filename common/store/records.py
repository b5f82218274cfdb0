"""The records the store keeps, as the rest of the code sees them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from common.store.port import Doc


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    tokens: int
    is_admin: bool = False

    @classmethod
    def from_doc(cls, doc: Doc) -> Account:
        return cls(doc["username"], doc["password_hash"], int(doc["tokens"]), bool(doc.get("is_admin")))


@dataclass(frozen=True)
class Spend:
    """The outcome of `spend`: a fresh charge, or the replay of an earlier one with the same key."""

    spend_id: str
    balance: int
    replayed: bool = False
    response: dict[str, Any] | None = None
    fingerprint: str | None = None


@dataclass
class Job:
    id: str
    owner: str
    classes: list[str]
    source: str
    min_score: float
    total: int
    status: str = "queued"
    processed: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    failed: int = 0
    created: float = 0.0
    model: str | None = None
    spend_id: str = ""
    updated: float = 0.0
    error: str | None = None

    FINAL = ("done", "failed", "cancelled")

    @classmethod
    def from_doc(cls, doc: Doc) -> Job:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def doc(self) -> Doc:
        return asdict(self)

    @property
    def finished(self) -> bool:
        return self.status in self.FINAL

    def public(self) -> dict[str, Any]:
        percentage = 100.0 if self.total == 0 else round(100.0 * self.processed / self.total, 1)
        return {
            "id": self.id,
            "status": self.status,
            "total": self.total,
            "processed": self.processed,
            "matched": {c: self.matched.get(c, 0) for c in self.classes},
            "unmatched": self.unmatched,
            "failed": self.failed,
            "percentage": percentage,
            "classes": self.classes,
            "source": self.source,
            "min_score": self.min_score,
            "model": self.model,
            "created": self.created,
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class ImageOutcome:
    """What the worker decided for one image of a job: a class name, `unmatched`, or `failed`."""

    object: str
    outcome: str
    destination: str | None = None
    detail: str | None = None
