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
(the sweeper) closes it after its lease. A sort job's outputs (counted without the quota: they are paid for) add to
usage shards (`USAGE_SHARDS` documents per account, by the output's key), not
to the account's usage document, so a job's image rate lands on no one
document; the usage is the document plus its shards. The quota of an upload
counts the shards as read just before its commit: a job's outputs landing
meanwhile can pass it by what they add (paid, like every output). A file with no record (stored before
records existed) is taken as counted, as it was then; files an operator drops
straight into the bucket folder are not counted.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

from common.core import errors
from common.records.port import Doc, DocumentStore, Tx

USAGE, OBJECTS, WRITES, SHARDS = "usage", "space_objects", "space_writes", "usage_shards"
USAGE_SHARDS = 128  # a job's outputs spread over this many documents per account
Probe = Callable[[str], int | None]  # the size of what is stored at a key now, None when nothing is
WRITE_LEASE = 300.0  # seconds before the sweeper closes an operation whose writer died


def shard_of(username: str, key: str) -> str:
    """The usage shard a job's output at `key` counts in."""
    return f"{username}:{zlib.crc32(key.encode()) % USAGE_SHARDS}"


def add_usage(tx: Tx, username: str, bytes_delta: int, files_delta: int,
              limits: tuple[int, int] | None = None, shard: str | None = None,
              elsewhere: tuple[int, int] = (0, 0)) -> None:
    """Add to an account's usage inside `tx` (to one of its shards, given `shard`); with `limits` (bytes, files),
    growing past them (with what its shards hold: `elsewhere`) is a 403 `quota_exceeded` and changes nothing.
    A job's outputs are counted without limits: they were paid for."""
    if bytes_delta == files_delta == 0:
        return
    if shard is not None:  # a shard's sum may go below zero: the account's total is what counts
        doc = tx.get(SHARDS, shard) or {"owner": username, "bytes": 0, "files": 0}
        tx.put(SHARDS, shard, {**doc, "bytes": doc["bytes"] + bytes_delta, "files": doc["files"] + files_delta})
        return
    usage = tx.get(USAGE, username) or {"bytes": 0, "files": 0}
    # not clamped: a job's output counted in a shard and deleted through here takes its bytes off this document,
    # so the document may go below zero while the account's total (document + shards, clamped on read) is right
    new_bytes = usage["bytes"] + bytes_delta
    new_files = usage["files"] + files_delta
    if limits is not None and ((bytes_delta > 0 and new_bytes + elsewhere[0] > limits[0])
                               or (files_delta > 0 and new_files + elsewhere[1] > limits[1])):
        files, size = usage["files"] + elsewhere[1], usage["bytes"] + elsewhere[0]
        raise errors.Forbidden(
            f"Your space is full: {files} files, {size:,} bytes of at most {limits[1]} "
            f"files and {limits[0]:,} bytes. Delete files (DELETE /files/<path>) to make room.",
            code="quota_exceeded")
    tx.put(USAGE, username, {"bytes": new_bytes, "files": new_files})


def open_write(tx: Tx, owner: str, key: str, size: int, op_id: str, probe: Probe | None,
               limits: tuple[int, int] | None = None, sharded: bool = False,
               elsewhere: tuple[int, int] = (0, 0)) -> None:
    """Reserve what writing `size` bytes at `key` may add (0 for a removal) and open the operation. Without a
    `probe`, a key with no record is taken to hold nothing. `sharded`: counted in a usage shard (a job's output)."""
    shard = shard_of(owner, key) if sharded else None
    record = tx.get(OBJECTS, key)
    if record is None:  # never counted through here: what is there (if anything) was counted when it came
        record = {"owner": owner, "size": probe(key) if probe else None, "open": 0}
    alone = record["open"] == 0 and record["size"] is not None
    grows = max(0, size - record["size"]) if alone else size  # beside another write: as if the old content stayed
    add_usage(tx, owner, grows, int(size > 0 and record["size"] is None), limits, shard, elsewhere)
    tx.put(OBJECTS, key, {**record, "open": record["open"] + 1})  # marks the object as being written
    tx.put(WRITES, op_id, {"owner": owner, "key": key, "bytes": grows,
                           "files": int(size > 0 and record["size"] is None),
                           "expires": time.time() + WRITE_LEASE, "shard": shard})


def close_write(tx: Tx, op_id: str, owner: str, key: str, probe: Probe) -> None:
    """Release an operation's reservation (once) and set the object's record and the usage to what is stored."""
    op, record = tx.get(WRITES, op_id), tx.get(OBJECTS, key)
    record = record or {"owner": owner, "size": None, "open": 0}
    shard = None if op is None else op.get("shard")
    released = (0, 0)
    if op is not None:
        tx.delete(WRITES, op_id)
        released = (op["bytes"], op["files"])
        record["open"] = max(0, record["open"] - 1)
    stored, counted = probe(key), record["size"]
    if record["open"] and counted is not None and (stored or 0) < counted:
        stored = counted  # another write is open, reserved against this size: it stays until the last one closes
    # the reservation released and what is stored counted, as one change: a write that stored what it reserved
    # (a job's output, most uploads) changes nothing, and its usage document (or shard) is not written again
    add_usage(tx, owner, (stored or 0) - (counted or 0) - released[0],
              (stored is not None) - (counted is not None) - released[1], shard=shard)
    if stored is None and record["open"] == 0:
        tx.delete(OBJECTS, key)
    else:
        tx.put(OBJECTS, key, {**record, "size": stored})


class UsageRecords:
    docs: DocumentStore

    def open_space_write(self, owner: str, key: str, size: int, op_id: str, probe: Probe,
                         limits: tuple[int, int] | None) -> None:
        """Step 1 of a write (an upload: with the quota's `limits`) or a removal (`size` 0): 403 over quota."""
        elsewhere = self._sharded(owner) if limits else (0, 0)
        self.docs.transact(lambda tx: open_write(tx, owner, key, size, op_id, probe, limits, elsewhere=elsewhere))

    def _sharded(self, username: str) -> tuple[int, int]:
        """What an account's usage shards hold (its jobs' outputs)."""
        shards = [doc for _, doc in self.docs.find(SHARDS, "owner", username, USAGE_SHARDS + 1)]
        return sum(int(d["bytes"]) for d in shards), sum(int(d["files"]) for d in shards)

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
        elsewhere = self._sharded(username)
        self.docs.transact(lambda tx: add_usage(tx, username, bytes_delta, files_delta, (max_bytes, max_files),
                                                elsewhere=elsewhere))

    def usage(self, username: str) -> tuple[int, int]:
        doc: dict[str, Any] = self.docs.get(USAGE, username) or {"bytes": 0, "files": 0}
        shard_bytes, shard_files = self._sharded(username)
        return max(0, int(doc["bytes"]) + shard_bytes), max(0, int(doc["files"]) + shard_files)
