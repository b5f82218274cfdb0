"""`GET /healthz` on every HTTP function: can it reach what it needs? 200 `{"status": "ok", "checks": {...}}`, or 503.

The backends checked are the process's own (`common.bootstrap.deps()`), the ones its handlers are given.
Each check is as cheap as it can be and still prove the backend answers: the
store one read (of a document that need not exist), storage one list of at most
one object, the queue its configuration (and the embedded queue its depth, and
whether it drains), the disk the free space of the local data folders, and
for a function that serves the model its files on disk (not loaded: a health
check must not cost a model load). The checks run at once, each given
HEALTH_TIMEOUT seconds; one that takes longer counts as failed.

A failure says which check failed and the exception's type; its detail goes to
the log only, since /healthz answers anyone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common.core.config import settings

log = logging.getLogger("imageclassify.health")
PATH = "/healthz"

# What each function target needs (its backends), by target name; one not listed needs store, storage and queue.
# The one table of it: `/healthz` checks these, and infra/targets.py ships the model files in a bundle whose target
# needs "model".
NEEDS: dict[str, tuple[str, ...]] = {
    "register": ("store", "disk"),
    "tokens": ("store", "disk"),
    "files_api": ("store", "storage", "disk"),
    "classify": ("store", "storage", "model", "disk"),
    "sort_job": ("store", "storage", "queue", "model", "disk"),
    "models": ("store", "storage", "queue", "model", "disk"),
    "sort_worker": ("store", "storage", "queue", "model", "disk"),
    "on_upload": ("store", "storage", "model", "disk"),
    "sweeper": ("store", "queue", "disk"),
    "web": (),
}
DEFAULT_NEEDS = ("store", "storage", "queue", "disk")
RECENT_FULL_DISK = 30.0  # seconds a write refused for a full disk keeps /healthz failing


class Unhealthy(Exception):
    """A check's own finding, safe to show (it names settings or file names, nothing more)."""


def _store() -> dict[str, Any]:
    from common import bootstrap  # here: the web function never checks a backend, and never pays for one

    bootstrap.deps().store.docs.get("health", "probe")
    return {"backend": settings().store.store_backend}


def _storage() -> dict[str, Any]:
    from common import bootstrap

    bootstrap.deps().storage.list("healthz/", None, 1)
    return {"backend": settings().storage.storage_backend}


def _queue() -> dict[str, Any]:
    s = settings()
    if s.queue.queue_backend == "pubsub" and not s.queue.pubsub_topic:
        raise Unhealthy("PUBSUB_TOPIC is not set")
    if s.queue.queue_backend == "sqs" and not s.queue.sqs_queue_url:
        raise Unhealthy("SQS_QUEUE_URL is not set")
    from common import bootstrap

    queue = bootstrap.deps().queue
    depth = getattr(queue, "depth", None)
    if depth is None:
        return {"backend": s.queue.queue_backend}
    stalled = queue.stalled()  # type: ignore[attr-defined]
    if stalled:
        raise Unhealthy(f"the queue is not draining: {stalled}")
    live, dead = depth()
    return {"backend": s.queue.queue_backend, "messages": live, "dead_letters": dead}


def _disk() -> dict[str, Any]:
    """The free space of each local data folder in use (the embedded store, bucket and queue), and whether a write
    was refused for a full disk lately (a large write fails while some space is left)."""
    import shutil

    from common.core import errors

    s = settings()
    folders = {"SQLITE_PATH": s.store.sqlite_path.parent if s.store.store_backend == "sqlite" else None,
               "BUCKET_DIR": s.storage.bucket_dir if s.storage.storage_backend == "local" else None,
               "QUEUE_PATH": s.queue.queue_path.parent if s.queue.queue_backend == "local" else None}
    free = {name: shutil.disk_usage(_existing(folder)).free for name, folder in folders.items() if folder}
    full = sorted(name for name, left in free.items() if left < s.health.disk_min_free_bytes)
    if full:
        raise Unhealthy(f"the disk is full: {', '.join(full)} has less than DISK_MIN_FREE_BYTES free")
    since = time.monotonic() - errors.last_full_disk
    if errors.last_full_disk and since < RECENT_FULL_DISK:
        raise Unhealthy(f"a write failed {int(since)}s ago: the disk was full")
    return {"free_bytes": min(free.values())} if free else {}


def _existing(folder: Path) -> Path:
    """The folder, or its nearest ancestor that exists (a data folder not made yet)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _model() -> dict[str, Any]:
    """The default model's files, as `common.models.model.available` wants them: its labels, and either the whole
    classifier or the backbone and its head (read here without importing numpy or LiteRT)."""
    from common.models import layout as model_layout

    s = settings()
    name, folder = s.models.default_model, s.models.models_dir
    if model_layout.servable(folder, name):
        return {"model": name}
    missing = [p.name for p in model_layout.split(folder, name) if not p.is_file()]
    raise Unhealthy(f"model files missing: {', '.join(missing)}")


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {"store": _store, "storage": _storage, "queue": _queue,
                                                    "model": _model, "disk": _disk}


def _run(name: str, check: Callable[[], dict[str, Any]], results: dict[str, dict[str, Any]]) -> None:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = {"ok": True, **check()}
    except Unhealthy as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of a backend is what this reports
        log.warning("health check %s failed", name, exc_info=exc)
        result = {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
    result["ms"] = round(1000 * (time.perf_counter() - started), 1)
    results[name] = result


def check(needs: Iterable[str]) -> tuple[dict[str, Any], int]:
    """Run the named checks at once; the body and status of the health reply."""
    results: dict[str, dict[str, Any]] = {}
    threads = [threading.Thread(target=_run, args=(n, CHECKS[n], results), daemon=True, name=f"health-{n}")
               for n in dict.fromkeys(needs)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + settings().health.health_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    checks = {n: results.get(n) or {"ok": False, "error": f"no answer within {settings().health.health_timeout:g}s"}
              for n in sorted(dict.fromkeys(needs))}
    ok = all(c["ok"] for c in checks.values())
    return {"status": "ok" if ok else "failing", "checks": checks}, 200 if ok else 503


def needs_of(function: str) -> tuple[str, ...]:
    return NEEDS.get(function, DEFAULT_NEEDS)


def probe(function: str, request: Any) -> tuple[dict[str, Any], int] | None:
    """The health reply when `request` asks for /healthz (before any routing), else None."""
    if request.path.rstrip("/") != PATH:
        return None
    if request.method not in ("GET", "HEAD"):
        from common.http import envelope

        raise envelope.MethodNotAllowed(f"{request.method} is not supported on {PATH}; use GET.",
                                      headers={"Allow": "GET, HEAD"})
    body, status = check(needs_of(function))
    return {**body, "function": function}, status
