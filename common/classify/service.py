"""The classify endpoint's work: charge, classify each image, refund the failures, reply.

Tokens are reserved for every image that passed parsing before any work is
done; each image that then fails (undecodable, unreachable URL, ...) is
refunded when the reservation is settled, in the same commit that keeps the
reply for an `Idempotency-Key` retry.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

from common.accounts import billing
from common.adapters.deps import Deps
from common.classify.request import ClassifyRequest, Item
from common.core import errors, logs
from common.files import spaces
from common.media import imagefetch
from common.records.records import Account

if TYPE_CHECKING:
    import numpy as np

    from common.models.classifier import Classifier

Outcome = dict[str, Any] | errors.AppError  # one image's result (its predictions ...), or why it failed


def load(item: Item, owner: str, deps: Deps) -> bytes:
    """The image bytes of one item (fetched, or read from the owner's space of the bucket, when needed)."""
    if item.kind == "url":
        return imagefetch.fetch(item.value)
    if item.kind == "uri":
        storage = deps.storage
        # not the request body's cap: on Lambda a larger image than a function URL takes is sent this way
        return storage.read(spaces.key_from_uri(item.value, owner, storage), deps.settings.storage.image_max_bytes)
    return bytes(item.value)


def run(account: Account, req: ClassifyRequest, idempotency_key: str | None, deps: Deps,
        present: errors.Present) -> tuple[int, dict[str, Any]]:
    """Charge, classify, refund failures; the status and body of the reply (a failed image's as `present` shows it),
    kept for a retry with the same key in the commit that settles the reservation."""
    from common.models.registry import resolve

    # the caller's own model first, then the built-ins: unknown is a 404, not ready a 409, before anything is spent
    model = resolve(account.username, req.model, deps)
    for name in req.classes or ():
        model.resolve(name)  # an unknown class is a 400 before anything is spent
    chargeable = [item for item in req.items if item.refusal is None]
    if not chargeable:
        raise req.items[0].refusal or errors.BadRequest("Nothing to classify.")
    fingerprint = _fingerprint(req) if idempotency_key is not None else ""  # hashing images only when it is used
    reservation = billing.reserve(deps.store, deps.settings, account, len(chargeable), idempotency_key, fingerprint)
    if reservation.replay is not None:
        return int(reservation.replay["status"]), reservation.replay["body"]
    try:
        outcomes = _classify_all(model, req, chargeable, account.username, deps)
    except BaseException:
        reservation.abandon(used=0)  # nothing was classified: the outcomes come all at once or not at all
        raise
    status, body = _reply(model.name, req.batch, outcomes, present)
    used = _classified(outcomes)
    body = reservation.settle(used, status, body)  # the refund and the reply kept for the key: one commit
    logs.annotate(images=used)
    return status, body


def _classified(outcomes: list[Outcome]) -> int:
    """How many images were classified (each costs one token; a failed one costs nothing)."""
    return sum(not isinstance(o, errors.AppError) for o in outcomes)


def _fingerprint(req: ClassifyRequest) -> str:
    items = [(i.kind, hashlib.sha256(i.value).hexdigest() if isinstance(i.value, bytes) else i.value,
              i.refusal.code if i.refusal else None) for i in req.items]
    return billing.fingerprint("classify", items, req.batch, req.top_k, req.min_score, req.model, req.classes)


def _classify_all(model: Classifier, req: ClassifyRequest, todo: list[Item], owner: str, deps: Deps) -> list[Outcome]:
    """Every item's outcome, in order; the `todo` ones (not refused already) are read, decoded and inferred side
    by side."""
    results = iter(model.predict_many([functools.partial(load, item, owner, deps) for item in todo]))
    default_min_score = deps.settings.jobs.default_min_score
    return [item.refusal or _classify(model, next(results), req, default_min_score) for item in req.items]


def _classify(model: Classifier, probs: np.ndarray | errors.AppError, req: ClassifyRequest,
              default_min_score: float) -> Outcome:
    from common.models.model import best_class

    if isinstance(probs, errors.AppError):
        return probs
    result: dict[str, Any] = {"predictions": model.top(probs, req.top_k, req.min_score or 0.0)}
    if req.classes:
        scores = model.class_scores(probs, req.classes)
        threshold = default_min_score if req.min_score is None else req.min_score
        result["class_scores"] = {c: round(v, 5) for c, v in scores.items()}
        result["class"] = best_class(scores, threshold)
    return result


def _reply(model: str, batch: bool, outcomes: list[Outcome], present: errors.Present) -> tuple[int, dict[str, Any]]:
    if batch:
        return 200, {"model": model, "results": [
            {"index": i, "error": present(o)[1]["error"]} if isinstance(o, errors.AppError) else {"index": i, **o}
            for i, o in enumerate(outcomes)]}
    only = outcomes[0]
    if isinstance(only, errors.AppError):
        return present(only)
    return 200, {"model": model, **only}
