"""moto_server with its DynamoDB requests served one at a time: `python -m tests.moto_serial PORT`.

moto applies a `TransactWriteItems` item by item on shared tables and undoes a
cancelled one by restoring a copy of each table taken when it began, with no
lock: under the threaded server, concurrent transactions interleave and a
cancelled one wipes commits made meanwhile. DynamoDB itself is serializable;
serving its requests one at a time gives the store tests that guarantee
(other services are still served concurrently).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class SerialDynamoDB:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), SerialDynamoDB(DomainDispatcherApplication(create_backend_app)),
               threaded=True)
