"""Classify many sources through `POST /classify` batches, keeping per-image errors per image.

A batch whose every image failed comes back as one refusal; so does a batch
too large for the server. Such a refusal is split: each image is sent alone,
so each gets its own error (failed images are not charged). A refusal of the
whole request (401, 402, unknown model, ...) stops everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from imageclassify_client import inputs
from imageclassify_client.api import Client
from imageclassify_client.errors import ApiError
from imageclassify_client.inputs import Source

ITEM_CODES = {"invalid_source", "invalid_base64", "empty_image", "url_not_allowed"}
ITEM_STATUSES = {413, 415, 422, 502, 504}


@dataclass
class Outcome:
    """One source's result: the server's item (`predictions`, and with classes `class_scores`/`class`) or error."""

    source: Source
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        body = self.result if self.error is None else {"error": self.error}
        return {"input": self.source.name, **{k: v for k, v in (body or {}).items() if k != "index"}}


@dataclass
class Run:
    outcomes: list[Outcome]
    model: str | None = None
    tokens_remaining: int | None = None


def about_the_image(exc: ApiError) -> bool:
    """Whether a refusal is about the images sent (so worth splitting) rather than about the request."""
    return exc.status in ITEM_STATUSES or (exc.status == 400 and exc.code in ITEM_CODES)


def local_error(source: Source) -> dict[str, Any] | None:
    if inputs.too_large(source):
        return {"status": 413, "code": "payload_too_large",
                "message": f"{source.size} bytes is larger than the API's limit of {inputs.MAX_IMAGE_BYTES} bytes; "
                           "shrink the image. It was not sent."}
    return None


def _send(client: Client, run: Run, batch: list[Source], options: dict[str, Any]) -> list[Outcome]:
    try:
        items = [inputs.payload(s) for s in batch]
    except OSError as exc:
        if len(batch) > 1:
            return [o for s in batch for o in _send(client, run, [s], options)]
        return [Outcome(batch[0], error={"status": 0, "code": "unreadable", "message": f"Cannot read it: {exc}"})]
    try:
        reply = client.classify_batch(items, **options)
    except ApiError as exc:
        if not about_the_image(exc):
            raise
        if len(batch) > 1:
            return [o for s in batch for o in _send(client, run, [s], options)]
        return [Outcome(batch[0], error=exc.json()["error"])]
    run.model = reply.get("model", run.model)
    if reply.get("tokens_remaining") is not None:
        run.tokens_remaining = int(reply["tokens_remaining"])
    results = reply.get("results") or []
    outcomes = []
    for index, source in enumerate(batch):
        item = next((r for r in results if r.get("index") == index), None)
        if item is None:
            outcomes.append(Outcome(source, error={"status": 0, "code": "missing_result",
                                                   "message": "The server's reply has no result for this image."}))
        elif "error" in item:
            outcomes.append(Outcome(source, error=item["error"]))
        else:
            outcomes.append(Outcome(source, result=item))
    return outcomes


def classify_all(client: Client, sources: Iterable[Source], options: dict[str, Any],
                 on_batch: Callable[[list[Outcome]], None] = lambda _: None) -> Run:
    """Classify every source; `on_batch` sees each batch's outcomes as they come (progress, saving state)."""
    run = Run([])
    for batch in inputs.batches(sources):  # a file too large for any request is a batch of its own
        error = local_error(batch[0])
        outcomes = [Outcome(batch[0], error=error)] if error else _send(client, run, batch, options)
        run.outcomes.extend(outcomes)
        on_batch(outcomes)
    return run
