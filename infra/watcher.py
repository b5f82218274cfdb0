"""The local stack's bucket trigger: new files under `<bucket dir>/<WATCH_PREFIX>` become `on_upload` events.

Polls the folder (portable, no inotify needed) and POSTs one GCS-style
`google.cloud.storage.object.v1.finalized` CloudEvent per new or changed file.
Files present when it starts are taken as already seen.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from common.adapters.eventpost import post_event
from common.adapters.storage.local import files
from common.jobs.events import GCS_FINALIZED

log = logging.getLogger("imageclassify.watcher")


def snapshot(root: Path, prefix: str) -> dict[str, tuple[int, int]]:
    """The regular files under the prefix (links are not followed, as in the bucket itself; a file deleted while
    it is looked at is not there)."""
    root = root.resolve()
    found = {}
    for key, entry in files(root, root / prefix):
        with contextlib.suppress(FileNotFoundError):
            stamp = entry.stat(follow_symlinks=False)
            found[key] = (stamp.st_mtime_ns, stamp.st_size)
    return found


def watch(root: Path, prefix: str, bucket: str, target: str, stop: threading.Event, interval: float = 0.5,
          headers: dict[str, str] | None = None) -> None:
    seen = snapshot(root, prefix)
    while not stop.wait(interval):
        try:
            current = snapshot(root, prefix)
        except Exception as exc:  # noqa: BLE001 - the watcher outlives anything on disk (e.g. a folder it cannot read)
            log.warning("could not look at %s: %s", prefix, exc)
            continue
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
