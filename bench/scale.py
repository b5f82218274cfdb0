"""The `scale` section: the store's traffic under many instances, against the Firestore emulator, as Firestore sees it.

With the stub model (bench/stub_model.py) the database is the bottleneck. Two
loads, each with every committed write recorded (common/adapters/store/recorder.py):

- a sort job of SCALE_IMAGES images handled by 1, 4 and 16 worker processes
  (SCALE_WORKERS), each calling the sort worker's own handler on its share of
  the job's messages;
- one account driven by 1, 4 and 16 concurrent callers (SCALE_CALLERS) spread
  over SCALE_PROCESSES processes, through the classify function's own app, for
  SCALE_SECONDS each.

For each: the rate, transaction attempts per unit of work and per commit, the
most writes to one document in any 1-second window, the busiest document's
writes per second over the run, and whether it all came out exact.

    python -m bench.scale OUT.json     (bench/run.py's `scale` section runs this; SCALE_LABEL names the run)
    SCALE_LABEL=quick SCALE_IMAGES=500 SCALE_SECONDS=3 python -m bench.run scale     a quick run (under a minute)

A Firestore emulator is started in its own process group, unless
FIRESTORE_EMULATOR_HOST names one already running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import table
from bench.scale_writes import summarize
from infra.processes import REPO, firestore_emulator

PY = sys.executable
CLASSES = ["food", "cat", "clothing"]
SECRET = "scale-bench-signing-secret"


def sizes() -> dict[str, Any]:
    def counts(name: str, default: str) -> list[int]:
        return [int(n) for n in os.environ.get(name, default).split(",") if n.strip()]

    return {"images": int(os.environ.get("SCALE_IMAGES", "10000")), "workers": counts("SCALE_WORKERS", "1,4,16"),
            "callers": counts("SCALE_CALLERS", "1,4,16"), "processes": int(os.environ.get("SCALE_PROCESSES", "4")),
            "seconds": float(os.environ.get("SCALE_SECONDS", "20"))}


def configure(data: Path, host: str) -> dict[str, str]:
    """This process's settings, and the environment its worker processes get."""
    from common.adapters.backends import reset_all
    from common.core.config import settings

    env = {"STORE_BACKEND": "firestore", "FIRESTORE_EMULATOR_HOST": host, "DATA_DIR": str(data),
           "GOOGLE_CLOUD_PROJECT": "imageclassify-scale", "STORAGE_BACKEND": "local", "INTERNAL_SECRET": SECRET,
           "MODEL_WARMUP": "0", "PYTHONPATH": str(REPO)}
    os.environ.update(env)
    os.environ.pop("STORE_RECORD", None)  # this process's own set-up and checks are not recorded
    settings.cache_clear()
    reset_all()
    return dict(os.environ)


class Processes:
    """Worker processes, each in its own process group, started together once all of them are warm."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str], logs: Path) -> None:
        self.procs = []
        for n, argv in enumerate(argvs):
            log = open(logs / f"worker-{n}.log", "wb")  # noqa: SIM115 - the child holds it
            self.procs.append(subprocess.Popen([PY, "-m", "bench.scale_worker", *argv], cwd=REPO, env=env,
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                               start_new_session=True))
            log.close()
        self.logs = logs

    def run(self) -> list[dict[str, Any]]:
        try:
            for n, proc in enumerate(self.procs):
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"scale worker {n} did not start; see {self.logs / f'worker-{n}.log'}")
            for proc in self.procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            results = []
            for n, proc in enumerate(self.procs):
                out, _ = proc.communicate(timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"scale worker {n} failed; see {self.logs / f'worker-{n}.log'}")
                results.append(json.loads(out.strip().splitlines()[-1]))
            return results
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=10)


def new_account(tokens: int, name: str) -> tuple[str, str]:
    """A fresh account holding `tokens`; (username, API key)."""
    from common.accounts.service import key_prefix, new_api_key
    from common.adapters.backends import get_store

    username = f"{name}-{uuid.uuid4().hex[:8]}"
    key, hashed = new_api_key()
    get_store().create_account(username, "not-a-password-hash", hashed, tokens, prefix=key_prefix(key))
    return username, key


def elapsed(results: list[dict[str, Any]]) -> float:
    return max(r["end"] for r in results) - min(r["start"] for r in results)


def sort_run(tmp: Path, env: dict[str, str], images: int, workers: int) -> dict[str, Any]:
    from common.adapters.backends import get_storage, get_store
    from common.adapters.deps import Deps
    from common.core.config import settings
    from common.files import spaces
    from common.jobs import service as jobs

    username, _ = new_account(images, f"sort{workers}")
    source = settings().storage.bucket_dir / spaces.space(username) / "all"
    source.mkdir(parents=True)
    for i in range(images):
        (source / f"{i:05d}.png").write_bytes(b"image %d" % i)
    published: list[dict[str, Any]] = []

    class Capture:
        def publish(self, messages: Sequence[dict[str, Any]]) -> None:
            published.extend(messages)

    account = get_store().get_account(username)
    assert account is not None
    deps = Deps(settings, store=get_store, storage=get_storage, queue=Capture())  # the bench's workers take them
    job = jobs.create_job(account, {"classes": CLASSES, "source": "all/"}, deps)
    messages = tmp / f"messages-{workers}.json"
    messages.write_text(json.dumps(published))
    record = tmp / f"writes-sort-{workers}"
    results = Processes([["sort", str(messages), str(n), str(workers)] for n in range(workers)],
                        {**env, "STORE_RECORD": str(record)}, tmp).run()
    seconds = elapsed(results)
    done = get_store().get_job(job.id)
    assert done is not None
    records = get_store().job_images(job.id)
    account = get_store().get_account(username)
    assert account is not None
    outputs = sum(p.is_file() for p in source.parent.rglob("*")) - images  # the copies in the class folders
    exact = {"status": done.status, "processed": done.processed, "total": done.total, "failed": done.failed,
             "matched": sum(done.matched.values()) + done.unmatched, "image_records": len(records),
             "distinct_images": len({r.object for r in records}), "tokens_left": account.tokens,
             "tokens_expected": done.failed, "outputs": outputs, "redelivered": sum(r["redelivered"] for r in results),
             "failures": [f for r in results for f in r["failures"]][:3]}
    exact["ok"] = (done.status == "done" and done.processed == done.total == images == len(records)
                   == exact["distinct_images"] and exact["matched"] + done.failed == images
                   and account.tokens == done.failed and done.writing == 0 and outputs == images - done.failed)
    return {"workers": workers, "images": images, "seconds": seconds, "images_per_s": images / seconds,
            "exact": exact, **summarize_run(record, seconds, images)}


def summarize_run(record: Path, seconds: float, units: int) -> dict[str, Any]:
    from common.adapters.store.recorder import read_records

    found = summarize(read_records(record), seconds)
    return {**found, "attempts_per_unit": found["attempts"] / units if units else 0.0,
            "commits_per_unit": found["commits"] / units if units else 0.0}


def classify_run(tmp: Path, env: dict[str, str], callers: int, processes: int, seconds: float) -> dict[str, Any]:
    from common.adapters.backends import get_store

    tokens = 10_000_000
    username, key = new_account(tokens, f"classify{callers}")
    count = min(processes, callers)
    threads = [callers // count + (n < callers % count) for n in range(count)]
    record = tmp / f"writes-classify-{callers}"
    results = Processes([["classify", key, str(t), str(seconds)] for t in threads],
                        {**env, "STORE_RECORD": str(record)}, tmp).run()
    took = elapsed(results)
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    ok = statuses.get("200", 0)
    left = get_store().balance(username)  # the processes gave their leases back as they exited
    exact = {"statuses": statuses, "tokens_spent": tokens - left, "classified": ok,
             "leases_open": len((get_store().docs.get("accounts", username) or {}).get("leases") or {})}
    exact["ok"] = tokens - left == ok and set(statuses) <= {"200"} and not exact["leases_open"]
    return {"callers": callers, "processes": count, "seconds": took, "requests": sum(statuses.values()),
            "requests_per_s": ok / took, "exact": exact, **summarize_run(record, took, ok)}


def print_tables(report: dict[str, Any]) -> None:
    def rows(runs: dict[str, dict[str, Any]], unit: str, rate: str) -> list[tuple[str, ...]]:
        return [(n, f"{r[rate]:.1f}", f"{r['attempts_per_unit']:.2f}", f"{r['attempts_per_commit']:.3f}",
                 f"{r['max_writes_1s']} {r['max_writes_1s_document']}",
                 f"{r['busiest_document_writes_per_s']:.1f} {r['busiest_document']}",
                 "yes" if r["exact"]["ok"] else f"NO {r['exact']}") for n, r in runs.items()]

    head = ("{}", "{}/s", "tx attempts per {}", "attempts per commit", "most writes to 1 doc in 1 s",
            "busiest doc, writes/s over run", "exact")
    sort_head = tuple(h.format(w) for h, w in zip(head, ("workers", "images", "image", "", "", "", ""), strict=True))
    table(f"scale: a {report['sizes']['images']}-image sort job on the Firestore emulator, stub model "
          f"(load {report['load_before'][0]:.1f})", [sort_head, *rows(report["sort"], "image", "images_per_s")])
    classify_head = tuple(h.format(w) for h, w in zip(head, ("callers", "requests", "request", "", "", "", ""),
                                                      strict=True))
    table(f"scale: one account, concurrent classify callers over {report['sizes']['processes']} processes, "
          f"{report['sizes']['seconds']:.0f} s each", [classify_head,
                                                        *rows(report["classify"], "request", "requests_per_s")])
    hot = [(f"{load} {n}", kind, str(k["writes"]), str(k["documents"]), str(k["max_writes_1s"]),
            f"{k['busiest_document_writes_per_s']:.1f}")
           for load in ("sort", "classify") for n, r in report[load].items() for kind, k in r["by_kind"].items()]
    table("scale: committed writes by kind of document (its hottest document)", [
        ("run", "kind", "writes", "documents", "most in 1 s", "writes/s over run"), *hot])


def run(tmp: Path) -> dict[str, Any]:
    from bench import stub_model

    chosen = sizes()
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    emulator = None if host else firestore_emulator()
    try:
        env = configure(tmp / "data", host or f"127.0.0.1:{emulator.port}")  # type: ignore[union-attr]
        stub_model.install()
        report: dict[str, Any] = {"sizes": chosen, "load_before": os.getloadavg(), "sort": {}, "classify": {}}
        for workers in chosen["workers"]:
            report["sort"][str(workers)] = sort_run(tmp, env, chosen["images"], workers)
        for callers in chosen["callers"]:
            report["classify"][str(callers)] = classify_run(tmp, env, callers, chosen["processes"],
                                                            chosen["seconds"])
        report["load_after"] = os.getloadavg()
        report["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    finally:
        if emulator is not None:
            emulator.stop()
    print_tables(report)
    return report


def main() -> None:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp))
    out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
