"""Custom-model records and their rules, written once for every adapter.

- A model and the charge of its tokens (one per image) are created in one
  commit; a name the owner already uses is a 409 and charges nothing.
- Each chunk's arrival is its own document, so a redelivered chunk counts
  once. The commit that records the last chunk also moves the model to
  `training` and tells its caller to start the fit: exactly one caller is told.
- A fit marks the model ready only while it is still `training` with the
  version it fitted; a second, redelivered fit finds it ready and changes nothing.
- An image that could not be read is refunded in the commit that records its
  chunk, under one refund id per image. A run that ends `failed`, and a model
  deleted before it was ready, refund everything left, under one id per run.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeVar

from common.core import errors, metrics
from common.records import webhooks
from common.records.ledger import SPENDS, apply_refund, charge
from common.records.port import DocumentStore, Tx, transact_then
from common.records.records import ModelRecord, model_key

T = TypeVar("T")

MODELS, CHUNKS = "models", "model_chunks"
CHUNK_BATCH = 50  # chunk records deleted per transaction, well under any backend's limit


def unknown_model(name: str) -> errors.NotFound:
    return errors.NotFound(f"You have no model named {name[:80]!r}. GET /models lists yours and the built-ins.",
                           code="unknown_model")


def chunk_key(record: ModelRecord, chunk: int) -> str:
    return f"{record.reference}/{chunk}"


def _delete_all(tx: Tx, keys: list[str]) -> None:
    for key in keys:
        tx.delete(CHUNKS, key)


def image_refund_id(record: ModelRecord, key: str) -> str:
    return f"{record.spend_id}:{key}"


def _current(tx: Tx, owner: str, name: str, version: str) -> ModelRecord | None:
    """The model, when it still exists with this version (messages of a deleted model find nothing)."""
    doc = tx.get(MODELS, model_key(owner, name))
    record = ModelRecord.from_doc(doc) if doc else None
    return record if record is not None and record.version == version else None


def _refund_rest(tx: Tx, record: ModelRecord) -> None:
    spend = tx.get(SPENDS, record.spend_id)
    if spend is not None:
        apply_refund(tx, record.owner, record.spend_id, spend["amount"] - spend["refunded"],
                     f"{record.spend_id}:finish")


def _fail(tx: Tx, record: ModelRecord, error: str) -> None:
    record.status, record.error, record.updated = "failed", error, time.time()
    _refund_rest(tx, record)
    tx.put(MODELS, record.key, record.doc())


def _finished(record: ModelRecord) -> None:
    """A training run reached its final state: its duration for the metrics and the log."""
    metrics.finished("training", record.status, record.created, model=f"{record.owner}/{record.name}",
                     images=record.images)
    webhooks.kick_for(record, webhooks.model_event)


class ModelRecords:
    docs: DocumentStore

    def _ending(self, work: Callable[[Tx, list[ModelRecord]], T]) -> T:
        """Run `work` in a transaction; a run it ends (the record it appends to the list it is given) is counted
        for the metrics once it has committed, without reading the record again; its webhook's delivery is
        recorded in that commit."""
        return transact_then(self.docs, webhooks.announcing(work, webhooks.model_event), _finished)

    def create_model(self, record: ModelRecord, key_id: str = "") -> ModelRecord:
        """Store a new model and charge one token per image, atomically (409 for a name in use, 402 short)."""

        def work(tx: Tx) -> None:
            if tx.get(MODELS, record.key) is not None:
                raise errors.Conflict(f"You already have a model named {record.name!r}. Choose another name, or "
                                      f"DELETE /models/{record.name} first.", code="model_exists")
            charge(tx, record.owner, record.images, record.spend_id, kind="training", key_id=key_id)
            tx.put(MODELS, record.key, record.doc())

        record.created = record.updated = time.time()
        self.docs.transact(work)
        return record

    def get_model_record(self, owner: str, name: str) -> ModelRecord | None:
        doc = self.docs.get(MODELS, model_key(owner, name))
        return ModelRecord.from_doc(doc) if doc else None

    def models_of(self, owner: str, limit: int = 1000) -> list[ModelRecord]:
        return sorted((ModelRecord.from_doc(doc) for _, doc in self.docs.find(MODELS, "owner", owner, limit)),
                      key=lambda r: r.name)

    def chunk_recorded(self, record: ModelRecord, chunk: int) -> bool:
        return self.docs.get(CHUNKS, chunk_key(record, chunk)) is not None

    def record_chunk(self, owner: str, name: str, version: str, chunk: int, decoded: list[int],
                     failed: list[str]) -> str:
        """Count one chunk once: `decoded` images per class, `failed` keys refunded. Returns `fit` to the one
        caller that must start the fit (also to a redelivery of that chunk while the model is training, so a
        fit lost between this commit and its publication is published again), `failed` when the run ended
        with no usable image, `gone` for a deleted model, else `recorded` or `duplicate`."""

        def work(tx: Tx, ended: list[ModelRecord]) -> str:
            record = _current(tx, owner, name, version)
            if record is None:
                return "gone"
            if tx.get(CHUNKS, chunk_key(record, chunk)) is not None:
                return "fit" if record.status == "training" and record.fit_chunk == chunk else "duplicate"
            if record.status not in ("queued", "embedding"):
                return "duplicate"
            tx.put(CHUNKS, chunk_key(record, chunk), {"model": record.reference, "chunk": chunk,
                                                      "decoded": sum(decoded), "failed": failed[:1000]})
            for key in failed:
                apply_refund(tx, owner, record.spend_id, 1, image_refund_id(record, key))
            record.decoded = [a + b for a, b in zip(record.decoded, decoded, strict=True)]
            record.done += sum(decoded) + len(failed)
            record.failed += len(failed)
            record.chunks_in += 1
            record.status, record.updated = "embedding", time.time()
            if record.chunks_in < record.chunks:
                tx.put(MODELS, record.key, record.doc())
                return "recorded"
            missing = [label for label, n in zip(record.labels, record.decoded, strict=True) if n == 0]
            if missing:
                _fail(tx, record, "No image of " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
                      + " could be read, so the model cannot learn it. Check those folders hold images; every "
                      "token was refunded.")
                ended.append(record)
                return "failed"
            record.status, record.fit_chunk = "training", chunk
            tx.put(MODELS, record.key, record.doc())
            return "fit"

        return self._ending(work)

    def start_fit(self, owner: str, name: str, version: str) -> ModelRecord | None:
        """Count a fit starting, when the model is training; the record (its `fit_runs` numbers this run)."""

        def work(tx: Tx) -> ModelRecord | None:
            record = _current(tx, owner, name, version)
            if record is None or record.status != "training":
                return None
            record.fit_runs += 1
            record.updated = time.time()
            tx.put(MODELS, record.key, record.doc())
            return record

        return self.docs.transact(work)

    def finish_fit(self, owner: str, name: str, version: str, artefacts: str, accuracy: float | None,
                   macro_f1: float | None) -> str:
        """Mark the model ready with this fit's files: `ready`, or `already` (another fit finished first, or
        the run ended) or `gone` (deleted); in both of those the caller's files are not the model's."""

        def work(tx: Tx, ended: list[ModelRecord]) -> str:
            record = _current(tx, owner, name, version)
            if record is None:
                return "gone"
            if record.status != "training":
                return "already"
            record.status, record.artefacts, record.updated = "ready", artefacts, time.time()
            record.accuracy, record.macro_f1 = accuracy, macro_f1
            tx.put(MODELS, record.key, record.doc())
            ended.append(record)
            return "ready"

        return self._ending(work)

    def fail_model(self, owner: str, name: str, version: str, error: str) -> bool:
        """End an unfinished run as failed and refund every token not refunded yet; False if there was none."""

        def work(tx: Tx, ended: list[ModelRecord]) -> bool:
            record = _current(tx, owner, name, version)
            if record is None or record.status not in ModelRecord.ACTIVE:
                return False
            _fail(tx, record, error)
            ended.append(record)
            return True

        return self._ending(work)

    def delete_model(self, owner: str, name: str) -> ModelRecord:
        """Remove a model and its chunk records; one not yet ready is refunded in full. 404 if there is none."""

        def work(tx: Tx) -> ModelRecord:
            doc = tx.get(MODELS, model_key(owner, name))
            if doc is None:
                raise unknown_model(name)
            record = ModelRecord.from_doc(doc)
            if record.status in ModelRecord.ACTIVE:
                _refund_rest(tx, record)
            tx.delete(MODELS, record.key)
            return record

        record = self.docs.transact(work)
        # After the commit, in batches: one transaction of every chunk would pass a backend's limit (DynamoDB's
        # 100 items). The chunks are keyed by the model's version, so a leftover (a kill -9 here) is never read.
        chunks = [chunk_key(record, chunk) for chunk in range(record.chunks)]
        for start in range(0, len(chunks), CHUNK_BATCH):
            self.docs.transact(functools.partial(_delete_all, keys=chunks[start:start + CHUNK_BATCH]))
        return record

    def active_models(self, limit: int = 500) -> list[ModelRecord]:
        """Models whose training run has not finished (queued, embedding or training)."""
        return [ModelRecord.from_doc(doc) for status in ModelRecord.ACTIVE
                for _, doc in self.docs.find(MODELS, "status", status, limit)]

    def stalled_models(self, idle_since: float, limit: int = 500) -> list[ModelRecord]:
        """Unfinished models that have not moved since `idle_since`."""
        return [r for r in self.active_models(limit) if max(r.updated, r.created) < idle_since]

    def touch_model(self, owner: str, name: str) -> ModelRecord | None:
        """Mark an unfinished run as moving now (re-driven), so the sweeper gives it a full JOB_STALL_SECONDS."""

        def work(tx: Tx) -> ModelRecord | None:
            doc = tx.get(MODELS, model_key(owner, name))
            record = ModelRecord.from_doc(doc) if doc else None
            if record is None or record.status not in ModelRecord.ACTIVE:
                return None
            record.updated = time.time()
            tx.put(MODELS, record.key, record.doc())
            return record

        return self.docs.transact(work)
