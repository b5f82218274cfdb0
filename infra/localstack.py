"""The whole product on one port, for a laptop: `nox -s serve` (or `python -m infra.localstack`).

One process, each function mounted separately: every target is its own
functions-framework app (exactly what a deployment runs), and a small
dispatcher in front sends each path to its function. One process keeps the
stack light (one model in memory, one SQLite connection pool) and makes
Ctrl-C stop everything at once; the functions still share nothing but the
configured backends, as they would in the cloud.

    /register /api-key              -> register
    /token /tokens /refill          -> tokens
    /classify                       -> classify
    /jobs /classification-job       -> sort_job
    /_worker                        -> sort_worker (CloudEvents from the queue)
    /_upload                        -> on_upload   (CloudEvents from the bucket watcher / Pub/Sub)

Embedded backends by default (SQLite, the `.data/bucket/` folder, the local
queue, a watcher on `.data/bucket/inbox/`). `--emulators` runs the same stack
on the Firestore and Pub/Sub emulators and fake-gcs-server instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from infra.targets import TARGETS, routes

REPO = Path(__file__).resolve().parent.parent
ROUTES = routes()


class Dispatcher:
    """Sends each request to the functions-framework app of its target."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        first = environ.get("PATH_INFO", "/").strip("/").split("/", 1)[0]
        if first == "healthz":
            return self._json(start_response, "200 OK", {"status": "ok", "functions": sorted(self.apps)})
        target = ROUTES.get(first)
        if target is None or target not in self.apps:
            paths = sorted(f"/{p}" for p in ROUTES if not p.startswith("_"))
            return self._json(start_response, "404 Not Found", {"error": {
                "status": 404, "code": "not_found", "message": f"No such endpoint. Try one of: {', '.join(paths)}."}})
        return self.apps[target](environ, start_response)

    @staticmethod
    def _json(start_response: Any, status: str, body: dict[str, Any]) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def start_emulators(port: int, data_dir: Path) -> list[Any]:
    """Firestore, Pub/Sub and fake-gcs on free loopback ports, wired to this stack's worker and trigger."""
    import requests

    from infra import processes

    project = os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "imageclassify-local")
    firestore, pubsub = processes.firestore_emulator(), processes.pubsub_emulator()
    base = f"{pubsub.url}/v1/projects/{project}"
    for topic, endpoint in (("sort-images", "_worker"), ("bucket-uploads", "_upload")):
        requests.put(f"{base}/topics/{topic}", json={}, timeout=10)
        requests.put(f"{base}/topics/{topic}-dead-letter", json={}, timeout=10)
        requests.put(f"{base}/subscriptions/{topic}-push", timeout=10, json={
            "topic": f"projects/{project}/topics/{topic}", "ackDeadlineSeconds": 60,
            "pushConfig": {"pushEndpoint": f"http://127.0.0.1:{port}/{endpoint}"},
            "deadLetterPolicy": {"deadLetterTopic": f"projects/{project}/topics/{topic}-dead-letter",
                                 "maxDeliveryAttempts": 10}})
    gcs = processes.fake_gcs(["-event.pubsub-project-id", project, "-event.pubsub-topic", "bucket-uploads",
                              "-event.list", "finalize"],
                             env={**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub.port}"})
    bucket = os.environ.setdefault("BUCKET", "imageclassify-local")
    requests.post(f"{gcs.url}/storage/v1/b?project={project}", json={"name": bucket}, timeout=10)
    os.environ.update(STORE_BACKEND="firestore", FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{firestore.port}",
                      STORAGE_BACKEND="gcs", STORAGE_EMULATOR_HOST=gcs.url, QUEUE_BACKEND="pubsub",
                      PUBSUB_EMULATOR_HOST=f"127.0.0.1:{pubsub.port}", PUBSUB_TOPIC="sort-images")
    return [firestore, pubsub, gcs]


def build_apps() -> dict[str, Any]:
    import functions_framework

    return {t.name: functions_framework.create_app(t.name, str(t.source), t.signature) for t in TARGETS.values()}


def banner(port: int, emulators: bool) -> str:
    from common.config import settings

    s = settings()
    url = f"http://127.0.0.1:{port}"
    admin = "python -m common.admin create-admin admin"
    if emulators:
        names = ("STORE_BACKEND", "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                 "PUBSUB_EMULATOR_HOST")
        where = ("emulators (in memory): " + " ".join(f"{n}={os.environ[n]}" for n in names[2:]) +
                 f"\n  bucket:            gs://{s.bucket}/ (uploads under {s.watch_prefix} are labelled)")
        admin = " ".join(f"{n}={os.environ[n]}" for n in names[:3]) + " " + admin
    else:
        where = (f"accounts and jobs: {s.sqlite_path}\n  bucket folder:     {s.bucket_dir}/ "
                 f"(drop images into {s.bucket_dir}/{s.watch_prefix} to label them)")
    return f"""
ImageClassify Functions is serving on {url}
  {where}
  models:            {s.models_dir}/
  try:               curl -s -X POST {url}/register -H 'Content-Type: application/json' \\
                          -d '{{"username": "alice", "password": "a long password"}}'
  first admin:       {admin}
Ctrl-C stops everything.
"""


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ".data")))
    parser.add_argument("--emulators", action="store_true", help="Firestore + Pub/Sub emulators and fake-gcs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    data_dir = args.data_dir.resolve()
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.setdefault("MODELS_DIR", str(data_dir / "models"))
    os.environ.setdefault("WORKER_URL", f"http://127.0.0.1:{args.port}/_worker")
    emulators = start_emulators(args.port, data_dir) if args.emulators else []
    stop = threading.Event()
    try:
        from infra.httpserver import make_server

        server = make_server("127.0.0.1", args.port, Dispatcher(build_apps()))
        from common.config import settings

        s = settings()
        if s.storage_backend == "local":
            from infra.watcher import watch

            s.bucket_dir.mkdir(parents=True, exist_ok=True)
            threading.Thread(target=watch, daemon=True, args=(s.bucket_dir, s.watch_prefix, s.bucket,
                                                              f"http://127.0.0.1:{args.port}/_upload", stop)).start()
        signal.signal(signal.SIGTERM, _interrupt)
        print(banner(args.port, bool(emulators)), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("\nstopping ...", file=sys.stderr)
        server.server_close()
    finally:
        stop.set()
        for emulator in emulators:
            emulator.stop()


if __name__ == "__main__":
    main()
