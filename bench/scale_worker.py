"""One process of the scale bench: a sort worker or a few classify callers, with the stub model.

    python -m bench.scale_worker sort MESSAGES.json INDEX COUNT
        handles messages INDEX, INDEX+COUNT, ... of the job's list with `common.jobs.worker.handle`, the sort worker's
        own handler; a message that raises is delivered again, as the queue would
    python -m bench.scale_worker classify API_KEY CALLERS SECONDS
        CALLERS threads, each posting one image after another to the `classify` function's own WSGI app (the
        HTTP path in process, no socket) for SECONDS

Each process says `ready` once warm (store client open, app loaded), waits for a line on stdin (so every process
starts at once), and prints its result as one JSON line; stdout carries only these (the product's log lines go
to stderr, so a full pipe never stalls a worker). The environment names the store, the bucket folder and
STORE_RECORD, the folder where the store records every committed write.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import stub_model

REPO = Path(__file__).resolve().parent.parent
REDELIVERIES = 10


CHANNEL = sys.stdout  # to the bench: `ready`, then the result; the product's own log lines go to stderr (a file)


def start_together() -> float:
    print("ready", file=CHANNEL, flush=True)
    sys.stdin.readline()
    return time.time()


def sort(messages_file: str, index: int, count: int) -> dict[str, Any]:
    from common import bootstrap
    from common.adapters.backends import get_store
    from common.jobs import worker

    mine = json.loads(Path(messages_file).read_text())[index::count]
    if mine:
        get_store().get_job(mine[0]["job_id"])  # the client's channel, opened before the clock starts
    start = start_together()
    handled = redelivered = 0
    failures: list[str] = []
    for message in mine:
        for _ in range(REDELIVERIES):
            try:
                handled += worker.handle(message, bootstrap.deps())
                break
            except Exception as exc:  # noqa: BLE001 - the queue would deliver it again; counted and reported
                redelivered += 1
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"start": start, "end": time.time(), "messages": len(mine), "recorded": handled,
            "redelivered": redelivered, "failures": failures[:5]}


def classify(key: str, callers: int, seconds: float) -> dict[str, Any]:
    import functions_framework

    from common.adapters.backends import get_store

    app = functions_framework.create_app("classify", str(REPO / "functions" / "classify" / "main.py"))
    image, headers = stub_model.tiny_png(), {"Authorization": f"Bearer {key}", "Content-Type": "image/png"}
    get_store().get_account("nobody")  # the client's channel, opened before the clock starts
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = start_together()
    stop = start + seconds

    def caller() -> None:
        client = app.test_client()
        while time.time() < stop:
            status = client.post("/classify", data=image, headers=headers).status_code
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"start": start, "end": time.time(), "statuses": dict(statuses)}


def main() -> None:
    sys.stdout = sys.stderr  # a log line is written to whatever sys.stdout is at the time (common/logs.py)
    stub_model.install()
    mode, *args = sys.argv[1:]
    if mode == "sort":
        result = sort(args[0], int(args[1]), int(args[2]))
    else:
        result = classify(args[0], int(args[1]), float(args[2]))
    print(json.dumps(result), file=CHANNEL, flush=True)


if __name__ == "__main__":
    main()
