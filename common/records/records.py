"""The records the store keeps, as the rest of the code sees them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from common.records.port import Doc


def copied_fields(record: Any) -> Doc:
    """A record's fields as a document that shares no list or dict with it. The records' fields are scalars or
    flat lists and dicts of scalars, so one level of copying is `dataclasses.asdict`'s deep copy, at a fraction of
    its cost: a sort job writes its counters' document once per image."""
    return {f.name: _copy(getattr(record, f.name)) for f in fields(record)}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    tokens: int
    is_admin: bool = False
    suspended: bool = False  # by an admin: its keys and sessions answer 403 `account_suspended`
    last_active: float = 0.0  # coarse: written at most hourly (common/records/operator.py)
    key_id: str = ""  # the public id of the API key this request came with ("" for a password); spends record it

    @classmethod
    def from_doc(cls, doc: Doc) -> Account:
        return cls(doc["username"], doc["password_hash"], int(doc["tokens"]), bool(doc.get("is_admin")),
                   bool(doc.get("suspended")), float(doc.get("last_active") or 0.0))


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
    ended: float = 0.0  # when it finished (done, failed, cancelled); 0 while it runs, and on jobs ended before it
    error: str | None = None
    writing: int = 0  # outputs recorded but not yet in place: the job is done only when none is left
    not_written: int = 0  # images classified (and charged) whose output could not be written
    shards: int = 0  # counters its images count in (`job_shards.py`); 0: counted on this document (older jobs)
    shard_expected: list[int] = field(default_factory=list)  # how many images each shard expects
    shard_bounds: list[int] = field(default_factory=list)  # the CRC-32 where each shard after the first begins
    closer_groups: int = 0  # groups of shards its completion is counted in (`job_shards.py`); 0: one closer
    webhook: str | None = None  # where its end is announced (common/records/webhooks.py)

    FINAL = ("done", "failed", "cancelled")

    @classmethod
    def from_doc(cls, doc: Doc) -> Job:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def doc(self) -> Doc:
        return copied_fields(self)

    def end(self, status: str) -> None:
        """Make the job final (done, failed, cancelled), noting when: every ending goes through here."""
        self.status, self.ended = status, time.time()

    @property
    def finished(self) -> bool:
        return self.status in self.FINAL


@dataclass(frozen=True)
class ImageOutcome:
    """What the worker decided for one image of a job: a class name, `unmatched`, or `failed`."""

    object: str
    outcome: str
    destination: str | None = None
    detail: str | None = None
    usage: tuple[int, int] = (0, 0)  # bytes and files its output adds to the owner's space
    written: bool = False  # its output is in place (after that, nothing can fail it)

    @property
    def awaiting_copy(self) -> bool:
        """Classified, with an output that is not in place yet (the worker records before it copies)."""
        return self.outcome != "failed" and bool(self.destination) and not self.written

    @classmethod
    def from_doc(cls, doc: Doc) -> ImageOutcome:
        return cls(doc["object"], doc["outcome"], doc.get("destination"), doc.get("detail"),
                   tuple(doc.get("usage") or (0, 0)), bool(doc.get("written")))


@dataclass
class ModelRecord:
    """A custom model: its training run's state and books. `version` is new for every model created, so files,
    messages and cached heads of a deleted model can never be mistaken for those of a new one of that name."""

    owner: str
    name: str
    version: str
    labels: list[str]
    images: int
    chunks: int
    chunk_size: int
    augment: int
    source: str
    split: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    status: str = "queued"  # queued | embedding | training | ready | failed
    error: str | None = None
    done: int = 0  # images embedded or failed so far
    failed: int = 0  # images that could not be read or decoded (refunded)
    decoded: list[int] = field(default_factory=list)  # images decoded, per class
    chunks_in: int = 0
    fit_chunk: int = -1  # the chunk whose arrival started the fit
    fit_runs: int = 0  # fits started (more than one only when a fit was redelivered)
    artefacts: str = ""  # the bucket folder of the fit that made the model ready
    accuracy: float | None = None
    macro_f1: float | None = None
    backbone: str = "efficientnet_lite0"  # the built-in model whose backbone embeds its images (older records: Lite0)
    spend_id: str = ""
    created: float = 0.0
    updated: float = 0.0
    webhook: str | None = None  # where its end is announced (common/records/webhooks.py)

    ACTIVE = ("queued", "embedding", "training")

    @classmethod
    def from_doc(cls, doc: Doc) -> ModelRecord:
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    def doc(self) -> Doc:
        return copied_fields(self)

    @property
    def key(self) -> str:
        return model_key(self.owner, self.name)

    @property
    def reference(self) -> str:
        """How a job names the exact model it sorts with: `<owner>/<name>@<version>`."""
        return f"{self.owner}/{self.name}@{self.version}"


def model_key(owner: str, name: str) -> str:
    return f"{owner}/{name}"


def model_name(reference: str | None) -> str | None:
    """The name a user knows a model by, from a job's model reference (a built-in name, or owner/name@version)."""
    if reference is None or "@" not in reference:
        return reference
    return reference.split("@", 1)[0].rsplit("/", 1)[-1]
