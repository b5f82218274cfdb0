"""The small pieces of Google's own machinery the cloud rehearsal stands in for, each a thread of its process.

- `RoundRobin`: Cloud Run's front of a service with several instances, spreading requests over them in turn.
- `Eventarc`: the bucket trigger. fake-gcs-server publishes the bucket's notifications to a Pub/Sub topic, as a
  Cloud Storage notification does; they reach it by push, and it forwards those of its prefix to the function as
  Eventarc delivers a topic's messages, answering what the function answered, so a failure is delivered again.
- `scheduler`: Cloud Scheduler, POSTing to a function every period.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from common.jobs.events import PUBSUB_TYPE
from infra import processes

log = logging.getLogger("imageclassify.rehearsal")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "server", "date"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("front: connection from %s dropped", client_address)  # a caller gone: nothing to answer


class Front:
    """An HTTP server on a loopback port whose requests `handle(method, path, headers, body)` answers."""

    def __init__(self, handle: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, headers, answer = handle(self.command, self.path, dict(self.headers), body)
                except requests.RequestException as exc:  # the instance is down: the caller tries again later
                    status, headers, answer = 503, {"Content-Type": "text/plain"}, str(exc).encode()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        # a port of its own from the same picker as the functions behind it (a port 0 bind could take one of theirs)
        self.server = _Server(("127.0.0.1", processes.free_port()), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, name=f"front-{self.port}", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _forward(url: str, method: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    kept = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
    r = requests.request(method, url, data=body, headers=kept, timeout=600, allow_redirects=False)
    return r.status_code, dict(r.headers), r.content


class RoundRobin(Front):
    """Each request to the next instance in turn; `served` counts the requests each instance answered."""

    def __init__(self, instances: list[str]) -> None:
        self.instances, self.served = instances, Counter[str]()
        turn, lock = itertools.cycle(instances), threading.Lock()

        def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
            with lock:
                instance = next(turn)
                self.served[instance] += 1
            return _forward(instance + path, method, headers, body)

        super().__init__(handle)


class Eventarc(Front):
    """A bucket trigger as triggers.tf makes it: Cloud Storage's notifications of the objects finalized under
    `prefix` (the notification's filter, applied here since fake-gcs-server notifies of every object) delivered
    as Eventarc delivers a Pub/Sub topic: a binary `messagePublished` CloudEvent carrying the push's envelope."""

    def __init__(self, bucket: str, prefix: str, target: str, source: str) -> None:
        from common.adapters.eventpost import binary_event

        def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
            if method != "POST":
                return 405, {"Allow": "POST"}, b""
            envelope = json.loads(body)
            attributes = envelope.get("message", {}).get("attributes") or {}
            if attributes.get("eventType") != "OBJECT_FINALIZE" or attributes.get("bucketId") != bucket \
                    or not str(attributes.get("objectId", "")).startswith(prefix):
                return 204, {}, b""  # not a notification of this trigger: Cloud Storage would not have sent it
            event_headers, event_body = binary_event(envelope, PUBSUB_TYPE, source)
            return _forward(target, "POST", event_headers, event_body)

        super().__init__(handle)


def scheduler(url: str, period: float, stop: threading.Event) -> threading.Thread:
    """POST to `url` every `period` seconds until `stop` (Cloud Scheduler: no retry, the next run does the work)."""
    def run() -> None:
        while not stop.wait(period):
            try:
                requests.post(url, timeout=period)  # as triggers.tf: a POST with no body
            except requests.RequestException as exc:
                log.warning("scheduled call to %s failed: %s", url, exc)

    thread = threading.Thread(target=run, name="scheduler", daemon=True)
    thread.start()
    return thread
