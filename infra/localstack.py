"""The whole product on one port, for a laptop: `nox -s serve` (or `python -m infra.localstack`).

One process, each function mounted separately: every target is its own
functions-framework app (exactly what a deployment runs), and a small
dispatcher in front sends each path to its function. One process keeps the
stack light (one model in memory, one SQLite connection pool) and makes
Ctrl-C stop everything at once; the functions still share nothing but the
configured backends, as they would in the cloud.

    /register /api-key /sessions    -> register
    /keys /password /account        -> register
    /token /tokens /refill /admin   -> tokens
    /classify /upload /predict      -> classify
    /jobs /classification-job       -> sort_job
    /_worker                        -> sort_worker (CloudEvents from the queue)
    /_upload                        -> on_upload   (CloudEvents from the bucket watcher / Pub/Sub)
    / /assets /config.json          -> web         (the console; `/` is the empty first segment)
    /openapi.json /docs             -> web
    /healthz /metrics               -> the stack itself (every function's checks; Prometheus text)

Embedded backends by default (SQLite, the `.data/bucket/` folder, the local
queue, a watcher on `.data/bucket/inbox/`). `--emulators` runs the same stack
on the Firestore and Pub/Sub emulators and fake-gcs-server instead, `--aws` on
moto_server's DynamoDB, S3 and SQS (infra/aws_local.py). `--cloud` is
the cloud as it deploys instead: one process and one origin per function, each
from its own bundle (infra/rehearsal.py).
"""

from __future__ import annotations

import argparse
import hmac
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

    def __init__(self, apps: dict[str, Any], internal_token: str) -> None:
        self.apps, self.internal_token = apps, internal_token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "/").strip("/")
        first = path.split("/", 1)[0]
        if first in ("healthz", "metrics") and path == first:  # every function's checks at once; Prometheus text
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                return self._json(start_response, "405 Method Not Allowed", {"error": {
                    "status": 405, "code": "method_not_allowed", "message": f"/{first} answers GET only."}},
                    [("Allow", "GET, HEAD")])
            from infra.prometheus import serve

            return serve(first, sorted(self.apps), start_response)
        target = ROUTES.get(first)
        if target is None or target not in self.apps or (TARGETS[target].internal and not self._ours(environ)):
            paths = sorted(f"/{p}" for p in ROUTES if not p.startswith("_"))
            return self._json(start_response, "404 Not Found", {"error": {
                "status": 404, "code": "not_found", "message": f"No such endpoint. Try one of: {', '.join(paths)}."}})
        return self.apps[target](environ, start_response)

    def _ours(self, environ: dict[str, Any]) -> bool:
        """An internal endpoint answers only the stack's own queue, watcher and sweeper (a header), or a Pub/Sub
        push subscription the stack created (a `token` in its endpoint's query string)."""
        from urllib.parse import parse_qs

        query = parse_qs(environ.get("QUERY_STRING", ""))
        offered = environ.get("HTTP_X_INTERNAL_TOKEN") or query.get("token", [""])[0]
        return hmac.compare_digest(offered.encode(), self.internal_token.encode())

    @staticmethod
    def _json(start_response: Any, status: str, body: dict[str, Any],
              headers: list[tuple[str, str]] | None = None) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                *(headers or [])])
        return [data]


def start_emulators(port: int, data_dir: Path) -> list[Any]:
    """Firestore, Pub/Sub and fake-gcs on free loopback ports, wired to this stack's worker and trigger."""
    import requests

    from infra import processes

    project = os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "imageclassify-local")
    firestore, pubsub = processes.firestore_emulator(), processes.pubsub_emulator()
    base = f"{pubsub.url}/v1/projects/{project}"
    token = os.environ["INTERNAL_SECRET"]
    for topic, endpoint in (("sort-images", f"_worker?token={token}"), ("bucket-uploads", f"_upload?token={token}")):
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


def banner(port: int, emulators: bool, aws: str = "") -> str:
    from common.core.config import settings

    s = settings()
    url = f"http://127.0.0.1:{port}"
    admin = "python -m common.ops.admin create-admin admin"
    if emulators:
        names = ("STORE_BACKEND", "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                 "PUBSUB_EMULATOR_HOST")
        where = ("emulators (in memory): " + " ".join(f"{n}={os.environ[n]}" for n in names[2:]) +
                 f"\n  bucket:            gs://{s.storage.bucket}/ (uploads under {s.jobs.watch_prefix} are labelled)")
        admin = " ".join(f"{n}={os.environ[n]}" for n in names[:3]) + " " + admin
    elif aws:
        where = aws
    else:
        where = (f"accounts and jobs: {s.store.sqlite_path}\n  bucket folder:     {s.storage.bucket_dir}/ "
                 f"(drop images into {s.storage.bucket_dir}/{s.jobs.watch_prefix} to label them)")
    return f"""
ImageClassify Functions is serving on {url}
  web console:       {url}/   (API description: {url}/docs)
  {where}
  models:            {s.models.models_dir}/
  try:               curl -s -X POST {url}/register -H 'Content-Type: application/json' \\
                          -d '{{"username": "alice", "password": "a long password"}}'
  first admin:       {admin}
Ctrl-C stops everything.
"""


def internal_secret(data_dir: Path) -> str:
    """The stack's secret for its internal endpoints and message signatures, kept with its data (0600), so
    messages queued before a restart still verify after it."""
    import secrets

    path = data_dir / "internal.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def start_background(port: int, stop: threading.Event) -> None:
    """The stack's own machinery: queue delivery (resuming what a previous run left), the bucket watcher and the
    sweeper, each a daemon thread that ends with the process."""
    from common.adapters.backends import get_queue, internal_headers
    from common.core.config import settings
    from common.ops.sweeper import sweep

    s = settings()
    queue = get_queue()
    if hasattr(queue, "start"):
        queue.start()
    if s.storage.storage_backend == "local":
        from infra.watcher import watch

        s.storage.bucket_dir.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=watch, daemon=True, args=(s.storage.bucket_dir, s.jobs.watch_prefix, s.storage.bucket,
                                                          f"http://127.0.0.1:{port}/_upload", stop,
                                                          0.5, internal_headers())).start()

    def sweeping() -> None:
        while not stop.wait(s.jobs.sweep_interval):
            try:
                sweep()
            except Exception:  # noqa: BLE001 - the next round tries again
                logging.getLogger("imageclassify.sweeper").exception("sweep failed")

    threading.Thread(target=sweeping, name="sweeper", daemon=True).start()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    if "--cloud" in sys.argv[1:]:  # every function in its own process, from its bundle: infra/rehearsal.py
        sys.argv.remove("--cloud")
        from infra import rehearsal

        return rehearsal.main()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ".data")))
    parser.add_argument("--emulators", action="store_true", help="Firestore + Pub/Sub emulators and fake-gcs")
    parser.add_argument("--aws", action="store_true", help="moto_server's DynamoDB, S3 and SQS (infra/aws_local.py)")
    parser.add_argument("--cloud", action="store_true", help="the cloud rehearsal: one process and origin per "
                        "function, from its bundle (python -m infra.rehearsal --help)")
    args = parser.parse_args()
    from common.core.logs import configure

    configure()  # JSON lines, as the functions write them in the cloud

    data_dir = args.data_dir.resolve()
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.setdefault("MODELS_DIR", str(data_dir / "models"))
    os.environ.setdefault("WORKER_URL", f"http://127.0.0.1:{args.port}/_worker")
    os.environ.setdefault("DEAD_LETTER_URL", f"http://127.0.0.1:{args.port}/_dead_letter")
    os.environ["INTERNAL_SECRET"] = internal_secret(data_dir)
    from infra import predecessor

    predecessor.hold(data_dir)  # one stack per data folder: what a previous run reserved is released below
    emulators = start_emulators(args.port, data_dir) if args.emulators else []
    aws: Any = None
    if args.aws:
        from infra import aws_local

        aws = aws_local.start()
        emulators.append(aws[0])
    stop = threading.Event()
    try:
        from infra.httpserver import make_server

        server = make_server("127.0.0.1", args.port, Dispatcher(build_apps(), os.environ["INTERNAL_SECRET"]))
        predecessor.release_predecessor()  # before anything is served
        start_background(args.port, stop)
        if aws:
            aws_local.relay(args.port, aws[1], os.environ["INTERNAL_SECRET"], stop)
        # Ctrl-C and SIGTERM stop it, also when started from a shell's background job, whose children inherit an
        # ignored SIGINT (Python then installs no KeyboardInterrupt handler, and `LocalStack.stop` would wait)
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        print(banner(args.port, args.emulators, aws_local.where(aws[0]) if aws else ""), flush=True)
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
