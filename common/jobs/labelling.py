"""Label new uploads: classify an object that landed under the watched prefix and write its labels.

Outputs go outside the watched prefix (`labels/...`, and class folders when
AUTOSORT_CLASSES is set), so they never trigger the function again.
"""

from __future__ import annotations

import json
from typing import Any

from common.adapters.deps import Deps
from common.core import errors
from common.jobs.sorting import copy_unless_taken


def label_upload(bucket: str, key: str, present: errors.Present, deps: Deps) -> dict[str, Any] | None:
    """Classify a new upload under the watched prefix; write labels/<key>.json (an error as `present` shows it);
    auto-sort if configured."""
    from common.models.model import best_class, get_model
    s, storage = deps.settings, deps.storage
    if bucket != storage.bucket or not key.startswith(s.jobs.watch_prefix) or key.endswith("/"):
        return None  # outside the watched prefix: our own outputs land here and must not re-trigger
    model = get_model()
    result: dict[str, Any] = {"object": key, "model": model.name}
    try:
        probs = model.predict(storage.read(key, s.storage.image_max_bytes))
    except errors.BAD_IMAGE as exc:
        result["error"] = present(exc)[1]["error"]
    except errors.NotFound:
        return None  # deleted before we got to it
    else:
        result["predictions"] = model.top(probs, 5)
        if s.jobs.autosort_classes:
            scores = model.class_scores(probs, s.jobs.autosort_classes)
            chosen = best_class(scores, s.jobs.default_min_score)
            result["class_scores"] = {c: round(v, 5) for c, v in scores.items()}
            result["class"] = chosen or "unmatched"
            destination = f"{result['class']}/{key[len(s.jobs.watch_prefix):]}"
            try:  # never over a different file: a clash is noted in the labels instead
                copy_unless_taken(key, destination, destination, deps)
            except (errors.Conflict, errors.NotFound) as exc:
                result["sort_error"] = present(exc)[1]["error"]
    storage.write(f"{s.jobs.labels_prefix}{key}.json", json.dumps(result, indent=1).encode(), "application/json")
    return result
