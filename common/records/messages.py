"""The queue's messages, built in one place and signed: one image of a sort job, one chunk or the fit of a
training run. The handlers drop what we did not sign or do not recognise, so a message shaped differently in
one publisher (a job, a re-drive, a new training run) would be lost without a word."""

from __future__ import annotations

from typing import Any

from common.core import signing
from common.records.records import ModelRecord

TRAINING_KINDS = ("embed", "fit")  # a message with one of these kinds is a training run's; any other a job's


def image(job_id: str, key: str) -> dict[str, Any]:
    return signing.sign({"job_id": job_id, "object": key})


def training(record: ModelRecord, kind: str, **extra: Any) -> dict[str, Any]:
    """`kind` is `embed` (with `chunk`) or `fit`."""
    return signing.sign({"kind": kind, "owner": record.owner, "name": record.name, "version": record.version,
                         **extra})
