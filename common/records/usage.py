"""Per-account storage usage, kept equal to what the space holds whatever the interleaving, so a quota costs one
read.

A size record per object says what each file counts. A write to a space (an
upload, a sort job's output) or a removal goes in three steps:

1. `open_write`, one commit: the bytes the write may add are reserved in the
   usage, under an operation with a lease: what it grows the file by when it
   is the path's only write, all of it beside another (as if the old content
   stayed), so racing writes of one path cannot pass the quota between them.
2. The storage is changed.
3. `close_write`, one commit: the reservation is released, and the object's
   record and the usage are set to what the storage holds now (a `Probe`,
   looked at inside the commit, after the record was read). Closes of one
   object are serialized on its record, so the last to commit sees the last
   write: the records add up to what is stored. (While other writes of the
   object are open, its record never shrinks: their reservations were made
   against it.)

A failed storage write closes the same way, which puts record and usage back.
A crash between the steps leaves the operation open; `close_expired_writes`
(the sweeper) closes it after its lease. A file with no record (stored before
records existed) is taken as counted, as it was then; files an operator drops
straight into the bucket folder are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common.core import errors
from common.records.port import Doc, DocumentStore, Tx

USAGE, OBJECTS, WRITES = "usage", "space_objects", "space_writes"
Probe = Callable[[str], int | None]  # the size of what is stored at a key now, None when nothing is
WRITE_LEASE = 300.0  # seconds before the sweeper closes an operation whose writer died


def add_usage(tx: Tx, username: str, bytes_delta: int, files_delta: int,
              limits: tuple[int, int] | None = None) -> None:
    """Add to an account's usage inside `tx`; with `limits` (bytes, files), growing past them is a 403
    `quota_exceeded` and changes nothing. A job's outputs are counted without limits: they were paid for."""
    if bytes_delta == files_delta == 0:
        return
    usage = tx.get(USAGE, username) or {"bytes": 0, "files": 0}
    new_bytes = max(0, usage["bytes"] + bytes_delta)
    new_files = max(0, usage["files"] + files_delta)
    if limits is not None and (
            (bytes_delta > 0 and new_bytes > limits[0]) or (files_delta > 0 and new_files > limits[1])):
        raise errors.Forbidden(
            f"Your space is full: {usage['files']} files, {usage['bytes']:,} bytes of at most {limits[1]} "
            f"files and {limits[0]:,} bytes. Delete files (DELETE /files/<path>) to make room.",
            code="quota_exceeded")
    tx.put(USAGE, username, {"bytes": new_bytes, "files": new_files})


def open_write(tx: Tx, owner: str, key: str, size: int, op_id: str, probe: Probe | None,
               limits: tuple[int, int] | None = None) -> None:
    """Reserve what writing `size` bytes at `key` may add (0 for a removal) and open the operation. Without a
    `probe`, a key with no record is taken to hold nothing."""
    record = tx.get(OBJECTS, key)
    if record is None:  # never counted through here: what is there (if anything) was counted when it came
        record = {"owner": owner, "size": probe(key) if probe else None, "open": 0}
    alone = record["open"] == 0 and record["size"] is not None
    grows = max(0, size - record["size"]) if alone else size  # beside another write: as if the old content stayed
    add_usage(tx, owner, grows, int(size > 0 and record["size"] is None), limits)
    tx.put(OBJECTS, key, {**record, "open": record["open"] + 1})  # marks the object as being written
    tx.put(WRITES, op_id, {"owner": owner, "key": key, "bytes": grows,
                           "files": int(size > 0 and record["size"] is None),
                           "expires": time.time() + WRITE_LEASE})


def close_write(tx: Tx, op_id: str, owner: str, key: str, probe: Probe) -> None:
    """Release an operation's reservation (once) and set the object's record and the usage to what is stored."""
    op, record = tx.get(WRITES, op_id), tx.get(OBJECTS, key)
    record = record or {"owner": owner, "size": None, "open": 0}
    if op is not None:
        tx.delete(WRITES, op_id)
        add_usage(tx, owner, -op["bytes"], -op["files"])
        record["open"] = max(0, record["open"] - 1)
    stored, counted = probe(key), record["size"]
    if record["open"] and counted is not None and (stored or 0) < counted:
        stored = counted  # another write is open, reserved against this size: it stays until the last one closes
    add_usage(tx, owner, (stored or 0) - (counted or 0), (stored is not None) - (counted is not None))
    if stored is None and record["open"] == 0:
        tx.delete(OBJECTS, key)
    else:
        tx.put(OBJECTS, key, {**record, "size": stored})


class UsageRecords:
    docs: DocumentStore

    def open_space_write(self, owner: str, key: str, size: int, op_id: str, probe: Probe,
                         limits: tuple[int, int] | None) -> None:
        """Step 1 of a write (an upload: with the quota's `limits`) or a removal (`size` 0): 403 over quota."""
        self.docs.transact(lambda tx: open_write(tx, owner, key, size, op_id, probe, limits))

    def close_space_write(self, op_id: str, owner: str, key: str, probe: Probe) -> None:
        """Step 3: whether the storage change happened, failed, or is unknown, count what is stored."""
        self.docs.transact(lambda tx: close_write(tx, op_id, owner, key, probe))

    def close_expired_writes(self, probe: Probe, now: float | None = None, limit: int = 500) -> int:
        """Close the operations whose writer died (their lease ran out); how many."""
        found: list[tuple[str, Doc]] = self.docs.find_below(WRITES, "expires", now or time.time(), limit)
        for op_id, op in found:
            self.close_space_write(op_id, op["owner"], op["key"], probe)
        return len(found)

    def change_usage(self, username: str, bytes_delta: int, files_delta: int, max_bytes: int, max_files: int) -> None:
        """Add to an account's usage directly (an operator's correction); 403 `quota_exceeded` past a quota."""
        self.docs.transact(lambda tx: add_usage(tx, username, bytes_delta, files_delta, (max_bytes, max_files)))

    def usage(self, username: str) -> tuple[int, int]:
        doc: dict[str, Any] = self.docs.get(USAGE, username) or {"bytes": 0, "files": 0}
        return int(doc["bytes"]), int(doc["files"])
