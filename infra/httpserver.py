"""The local stack's HTTP server: waitress, with header, request and idle timeouts and JSON refusals.

Why waitress (pinned in requirements-dev.txt): it reads requests in one event
loop and hands a request to a worker thread only once it has arrived whole,
body included, so slow or stalled clients cost a socket, never a thread (1000
sockets sending half a request line leave the 8 threads free). It runs inside
this process, so the stack stays one process that Ctrl-C stops. gunicorn
(what functions-framework deploys) reads each request in a worker thread with
no header deadline, and forks; cheroot also parses in its worker threads;
werkzeug's development server starts a thread per connection and names its
version in a `Server` header.

What is added to waitress here:
- every refusal waitress makes itself (400, 408, 411, 413, 431, 500, 501, 505)
  is the project's JSON envelope, echoing nothing;
- HTTP/0.9 (a request line without a version) and versions other than 1.0/1.1
  are refused (505) as soon as the request line is in, chunked bodies with 411
  before any of the body is read (the contract asks for Content-Length);
- a request whose headers are not in after HTTP_HEADER_TIMEOUT seconds, whose
  body is not in by its deadline (HTTP_HEADER_TIMEOUT more, plus its length at
  MIN_BODY_RATE), or which is not whole after HTTP_REQUEST_TIMEOUT, is answered
  408 and closed; so is one that sends nothing for HTTP_IDLE_TIMEOUT; an idle
  connection between requests is closed then (waitress's channel_timeout);
- no `Server` header; bodies over MAX_BODY_BYTES are refused from the
  Content-Length before they are read, and a client that sent `Expect:
  100-continue` with such a length gets the 413 without a `100 Continue` first
  (waitress would invite the body, then refuse it).
"""

from __future__ import annotations

import re
import resource
import time
from typing import Any

from waitress import utilities
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from common.core.config import settings
from common.http.envelope import refusal
from common.http.guard import Guard, envelope

VERSION = re.compile(rb" HTTP/(\d\.\d)$")
MAX_HEADER_BYTES = 32 * 1024
MIN_BODY_RATE = 64 * 1024  # bytes a second a body may take on average past its grace (see `Parser.deadline`)
# bytes one read of a socket takes (waitress reads 8 KiB): a photo's upload arrives in a few turns of the event
# loop rather than dozens, which took half a millisecond off one client's latency (`bench.run throughput`)
RECV_BYTES = 256 * 1024


class _Refusal(utilities.Error):
    """A waitress error with any status; only `code` is used (the envelope says the rest)."""

    def __init__(self, code: int) -> None:
        super().__init__("")
        self.code = code


class Parser(HTTPRequestParser):
    """waitress's parser, refusing HTTP/0.9 and chunked bodies, and noting when the request began."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        self.started = time.monotonic()
        self.headers_in: float | None = None  # when the headers were complete

    def received(self, data: bytes) -> int:
        if self.body_rcv is None and not self.completed and not self.headers_finished:
            head = (self.header_plus + data).lstrip(b"\r\n")
            end = head.find(b"\n")
            version = VERSION.search(head[:end].rstrip(b"\r")) if end >= 0 else None
            if end >= 0 and (version is None or version[1] not in (b"1.0", b"1.1")):
                return self._refuse(505, len(data))  # HTTP/0.9 (no version), or a version we do not speak
        consumed = int(super().received(data))
        if self.headers_finished and self.headers_in is None:
            self.headers_in = time.monotonic()
        if self.error is not None:  # refused (413, 411...): no `100 Continue` inviting a body we will not read
            self.expect_continue = False
        return consumed

    def deadline(self, header_timeout: float, request_timeout: float) -> float:
        """When this request must be whole: its headers within header_timeout, then its body within as long
        again plus its length at MIN_BODY_RATE (a byte a second never makes it), all within request_timeout."""
        whole = self.started + request_timeout
        if self.headers_in is None:
            return min(whole, self.started + header_timeout)
        return min(whole, self.headers_in + header_timeout + self.content_length / MIN_BODY_RATE)

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if getattr(self, "chunked", False):
            self.error = _Refusal(411)
            self.body_rcv, self.chunked, self.connection_close = None, False, True

    def _refuse(self, status: int, consumed: int) -> int:
        self.parse_header(b"GET / HTTP/1.0\r\n")  # placeholders for the task's logging
        self.error, self.completed, self.headers_finished = _Refusal(status), True, True
        return consumed


class JsonErrorTask(ErrorTask):
    """waitress's own error replies, as the project's JSON envelope."""

    def execute(self) -> None:
        status, headers, body = envelope(refusal(int(self.request.error.code)))
        self.status = status
        self.response_headers.extend((n, v) for n, v in headers if n != "Content-Length")
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class Channel(HTTPChannel):
    parser_class = Parser
    error_task_class = JsonErrorTask


class Server(TcpWSGIServer):
    channel_class = Channel

    def maintenance(self, now: float) -> None:
        """Time out requests that arrive too slowly or stall, with a 408; then waitress closes idle channels
        (one whose request was just answered 408 is not idle: it has a reply to send)."""
        s, clock = settings(), time.monotonic()
        for channel in list(self.active_channels.values()):
            request = channel.request
            if request is None or request.completed or channel.requests:
                continue
            stalled = now - channel.last_activity > self.adj.channel_timeout
            if stalled or clock > request.deadline(s.http.http_header_timeout, s.http.http_request_timeout):
                with channel.requests_lock:
                    request.error, request.completed = _Refusal(408), True
                    channel.requests.append(request)
                    channel.request = None
                self.add_task(channel)
        super().maintenance(now)

    def serve_forever(self) -> None:
        """Serve until interrupted; KeyboardInterrupt reaches the caller once the worker threads are stopped."""
        try:
            self.asyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self._map,
                               use_poll=self.adj.asyncore_use_poll)
        finally:
            self.task_dispatcher.shutdown()

    def server_close(self) -> None:
        self.close()


def _raise_open_files_limit(wanted: int) -> None:
    """Every connection is a file descriptor: let this process hold `wanted` of them if the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def make_server(host: str, port: int, app: Any) -> Server:
    """`app` behind the guard, served by waitress on host:port (not started: call `serve_forever`)."""
    s = settings()
    _raise_open_files_limit(s.http.http_connection_limit + 256)
    return Server(Guard(app), host=host, port=port, threads=s.http.http_threads, ident="",
                  channel_timeout=s.http.http_idle_timeout, cleanup_interval=1, asyncore_use_poll=True,
                  connection_limit=s.http.http_connection_limit, max_request_header_size=MAX_HEADER_BYTES,
                  max_request_body_size=s.http.max_body_bytes + 1, expose_tracebacks=False, recv_bytes=RECV_BYTES)
