"""The scale bench's instruments: the recorder counts what a store commits, per document, and a tiny run is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from bench.scale_writes import most_in_window, summarize
from common.adapters.store.recorder import RecordingDocuments, read_records
from common.core import errors
from common.records.metered import MeteredDocuments
from common.records.port import Tx
from infra import processes as servers
from tests.conftest import configure

COUNTER = ("scale_counters", "x")


def bump(tx: Tx, attempt: list[int]) -> int:
    doc = tx.get(*COUNTER) or {"n": 0}
    tx.put(*COUNTER, {"n": doc["n"] + 1})
    attempt.append(1)
    return int(doc["n"]) + 1


def test_recorder_counts_committed_writes_per_document(backend: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that lost a race (Firestore: another committed in between; SQLite: the other waits on the
    lock) is counted once per attempt and its writes once, from the attempt that committed; an aborted one
    writes nothing."""
    from common.adapters.backends import get_store

    record = tmp_path / "writes"
    configure(monkeypatch, STORE_RECORD=str(record))
    metered = get_store().docs
    assert isinstance(metered, MeteredDocuments)
    docs = metered.inner
    assert isinstance(docs, RecordingDocuments)
    other = threading.Thread(target=lambda: docs.transact(lambda tx: bump(tx, [])))
    runs: list[int] = []

    def contended(tx: Tx) -> None:
        first = not runs
        bump(tx, runs)
        tx.put("scale_scratch", "first" if first else "again", {"attempt": len(runs)})
        if first and backend != "sqlite":  # optimistic: another commit in between, this attempt's commit fails
            docs.transact(lambda inner: bump(inner, []))
        elif first:  # SQLite holds its write lock: the other one waits for this commit
            other.start()

    def refused(tx: Tx) -> None:
        tx.put("scale_scratch", "aborted", {})
        raise errors.Conflict("refused")

    docs.transact(contended)
    if backend == "sqlite":
        other.join(timeout=60)
    with pytest.raises(errors.Conflict):
        docs.transact(refused)
    assert docs.get(*COUNTER) == {"n": 2}

    records = list(read_records(record))
    writes = Counter(doc for r in records for doc in r.writes)
    assert writes[COUNTER] == 2
    assert writes[("scale_scratch", "first")] == (1 if backend == "sqlite" else 0)  # the lost attempt's: never
    assert writes[("scale_scratch", "again")] == (0 if backend == "sqlite" else 1)
    assert writes[("scale_scratch", "aborted")] == 0
    found = summarize(records, seconds=1.0)
    assert (found["attempts"], found["commits"], found["aborted"]) == ((4, 2, 1) if backend != "sqlite"
                                                                        else (3, 2, 1))
    assert found["by_kind"]["scale_counters"]["writes"] == 2


def test_most_writes_in_any_second_slides() -> None:
    assert most_in_window([]) == 0
    assert most_in_window([0.0, 0.5, 0.99, 1.0, 1.5, 1.9, 1.95]) == 5  # 0.99 .. 1.95: a calendar second has 4
    assert most_in_window([0.0, 2.0, 4.0]) == 1


def test_a_tiny_scale_run_is_exact(firestore_server: servers.Server, tmp_path: Path) -> None:
    """The `scale` bench section, small: a 40-image job over 2 worker processes, 2 classify callers."""
    from common.core.config import settings

    out = tmp_path / "scale.json"
    env = {**os.environ, "PYTHONPATH": str(servers.REPO), "SCALE_IMAGES": "40", "SCALE_WORKERS": "2",
           "SCALE_CALLERS": "2", "SCALE_PROCESSES": "2", "SCALE_SECONDS": "2",
           "MODELS_DIR": str(settings().models.models_dir.resolve()),
           "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{firestore_server.port}"}
    subprocess.run([sys.executable, "-m", "bench.scale", str(out)], cwd=servers.REPO, env=env, check=True,
                   timeout=600)
    report = json.loads(out.read_text())
    sort, calls = report["sort"]["2"], report["classify"]["2"]
    assert sort["exact"]["ok"], sort["exact"]
    assert sort["exact"]["image_records"] == sort["exact"]["distinct_images"] == 40
    assert calls["exact"]["ok"], calls["exact"]
    assert calls["exact"]["tokens_spent"] == calls["exact"]["classified"] > 0
    for run in (sort, calls):
        assert run["attempts"] >= run["commits"] > 0
        assert run["max_writes_1s"] >= 1 and run["busiest_document_writes_per_s"] > 0
