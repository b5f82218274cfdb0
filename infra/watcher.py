"""The local stack's bucket trigger: new files under `<bucket dir>/<WATCH_PREFIX>` become `on_upload` events.

Polls the folder (portable, no inotify needed) and POSTs one GCS-style
`google.cloud.storage.object.v1.finalized` CloudEvent per new or changed file.
Files present when it starts are taken as already seen.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from common.eventpost import post_event
from common.events import GCS_FINALIZED

log = logging.getLogger("imageclassify.watcher")


def snapshot(root: Path, prefix: str) -> dict[str, tuple[int, int]]:
    folder = root / prefix
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


def watch(root: Path, prefix: str, bucket: str, target: str, stop: threading.Event, interval: float = 0.5,
          headers: dict[str, str] | None = None) -> None:
    seen = snapshot(root, prefix)
    while not stop.wait(interval):
        current = snapshot(root, prefix)
        for key, stamp in sorted(current.items()):
            if seen.get(key) != stamp:
                data = {"bucket": bucket, "name": key, "size": str(stamp[1])}
                try:
                    source = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
                    status = post_event(target, data, GCS_FINALIZED, source, headers=headers)
                    if status >= 300:
                        log.warning("on_upload answered %s for %s", status, key)
                        continue  # try again next round
                except Exception as exc:  # noqa: BLE001 - the watcher keeps going
                    log.warning("on_upload unreachable for %s: %s", key, exc)
                    continue
            seen[key] = stamp
        for key in set(seen) - set(current):
            del seen[key]
