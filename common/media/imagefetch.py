"""Fetch an image by URL without letting the URL reach inside our network.

Only http and https. The host is resolved once, every address it resolves to
must be public (not loopback, private, shared, link-local, metadata, multicast,
reserved or unspecified, also when written as IPv4-mapped, NAT64 or 6to4
IPv6), and the connection goes to the address that was checked, so a DNS
answer cannot change between the check and the connect (rebinding). TLS still
verifies the certificate against the host name. Redirects are followed by
hand, at most three, each one checked the same way.

The whole transfer (connect, TLS, headers, body, every redirect) ends at
FETCH_DEADLINE whatever the remote does: every socket of the fetch is
registered with a timer that shuts it down when the time is up, so a server
trickling its headers or its body a few bytes a second gets a 504 at the
deadline (per-read socket timeouts alone never fire while bytes keep coming).
The body is streamed with a byte cap; `Accept-Encoding: identity` and a small
read size keep a compressed body from expanding past the cap. (Name
resolution is the one step the timer cannot cut short; it is the resolver's
own timeout.)

`FETCH_ALLOW_LOOPBACK=1` lets loopback addresses (only those) through: for the
tests and for an operator who serves images from the same machine. Off by default.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.core import errors
from common.core.config import settings
from common.media import hostnames

MAX_REDIRECTS = 3
BLOCKED_HOSTS = {"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                 "instance-data.ec2.internal"}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
CHUNK = 8192

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_v4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return addr.ipv4_mapped
        if addr.sixtofour:
            return addr.sixtofour
        if addr in NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: IPAddress) -> bool:
    inner = _embedded_v4(addr)
    if inner is not None:
        return is_public(inner)
    return addr.is_global and not addr.is_multicast and not addr.is_reserved


def _allowed(addr: IPAddress) -> bool:
    if is_public(addr):
        return True
    inner = _embedded_v4(addr) or addr
    return settings().fetch.fetch_allow_loopback and inner.is_loopback


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    address: str


def check_url(url: str) -> Target:
    """Parse and vet a URL; the returned target names the one address it is allowed to connect to."""
    refused = errors.UrlNotAllowed
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise errors.BadRequest(f"{url[:200]!r} is not a valid URL.", code="invalid_url") from None
    if parts.scheme not in ("http", "https"):
        raise refused(f"Only http and https URLs can be fetched, not {parts.scheme or 'a relative URL'}.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise errors.BadRequest("The URL has no host name.", code="invalid_url")
    if not hostnames.well_formed(host):
        raise errors.BadRequest(f"{host[:100]!r} is not a host name or an IP address. Check the URL.",
                                code="invalid_url")
    if parts.username or parts.password:
        raise refused("URLs with embedded credentials are not fetched.")
    local_name = host == "localhost" or host.endswith(".localhost")
    internal = host in BLOCKED_HOSTS or host.endswith(".internal") or local_name
    if internal and not (local_name and settings().fetch.fetch_allow_loopback):
        raise refused(f"{host} is an internal host name; give a public image URL.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise errors.BadGateway(f"The host {host} could not be resolved. Check the URL.", code="fetch_failed") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(_allowed(a) for a in addresses):
        raise refused(f"{host} resolves to a private, loopback, link-local or reserved address; "
                      "only public addresses are fetched.")
    return Target(url, parts.scheme, host, port, str(addresses[0]))


class Deadline:
    """Shuts down every socket registered with it once `seconds` have passed: the fetch's wall clock."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.at

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # a blocked recv on it returns at once
        sock.shutdown(socket.SHUT_RDWR)


_deadline: ContextVar[Deadline | None] = ContextVar("fetch_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Every connection opened in this context (by this thread) is cut when `seconds` have passed."""
    watch = Deadline(seconds)
    token = _deadline.set(watch)
    try:
        yield watch
    finally:
        _deadline.reset(token)
        watch.cancel()


class _WatchedHTTP(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch = _deadline.get()
        if watch is not None:
            watch.watch(sock)
        return sock


class _WatchedHTTPS(HTTPSConnection, _WatchedHTTP):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class _WatchedAdapter(HTTPAdapter):
    """Connections whose sockets the current fetch's deadline can cut."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _PinnedAdapter(_WatchedAdapter):
    """Connects to the vetted IP while TLS verifies the certificate for the host name."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.hostname
        kwargs["assert_hostname"] = self.hostname
        super().init_poolmanager(*args, **kwargs)


def pinned_request(target: Target, deadline: float, method: str = "GET", body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> requests.Response:
    """One request to the vetted address of `target`, never following a redirect (also webhooks' POSTs)."""
    parts = urlsplit(target.url)
    ip = f"[{target.address}]" if ":" in target.address else target.address
    pinned = urlunsplit((target.scheme, f"{ip}:{target.port}", parts.path or "/", parts.query, ""))
    default_port = target.port == (443 if target.scheme == "https" else 80)
    host_header = target.host if default_port else f"{target.host}:{target.port}"
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the check must hold for the real connection
    session.mount("https://", _PinnedAdapter(target.host))
    session.mount("http://", _WatchedAdapter())
    remaining = max(0.1, deadline - time.monotonic())
    return session.request(method, pinned, data=body, stream=True, allow_redirects=False,
                           timeout=(min(settings().fetch.fetch_connect_timeout, remaining), remaining),
                           headers={"Host": host_header, "Accept": "image/*", "Accept-Encoding": "identity",
                                    "User-Agent": "ImageClassify-Functions/1.0", **(headers or {})})


def fetch(url: str) -> bytes:
    """The body at `url`, or the project's error that says why not; never longer than FETCH_DEADLINE."""
    s = settings()
    with deadline(s.fetch.fetch_deadline) as watch:
        target = check_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = pinned_request(target, watch.at)
            except requests.RequestException as exc:
                if isinstance(exc, requests.Timeout) or watch.passed():
                    raise errors.GatewayTimeout(f"{target.host} did not answer within the time limit.") from None
                raise errors.BadGateway(f"Could not fetch the image from {target.host} ({type(exc).__name__}).",
                                        code="fetch_failed") from None
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    target = check_url(urljoin(target.url, location))
                    continue
                if response.status_code >= 400:
                    raise errors.BadGateway(f"{target.host} answered HTTP {response.status_code} for the image URL.",
                                            code="upstream_status", details={"upstream_status": response.status_code})
                return _read_capped(response, s.fetch.fetch_max_bytes, watch, target.host)
    raise errors.BadGateway(f"More than {MAX_REDIRECTS} redirects; give the image's final URL.",
                            code="too_many_redirects")


def _read_capped(response: requests.Response, cap: int, watch: Deadline, host: str) -> bytes:
    too_large = errors.PayloadTooLarge(f"The image at {host} is larger than {cap} bytes. Use a smaller image.")
    too_slow = errors.GatewayTimeout(f"{host} took too long to send the image.")
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:  # `²` is a digit to isdigit, not to int
        raise too_large
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > cap:
                raise too_large
            if watch.passed():
                raise too_slow
    except requests.RequestException as exc:
        if isinstance(exc, requests.Timeout) or watch.passed():
            raise too_slow from None
        raise errors.BadGateway(f"The download from {host} failed ({type(exc).__name__}).",
                                code="fetch_failed") from None
    if watch.passed():  # the deadline cut the body short: what arrived is not the image
        raise too_slow
    return bytes(body)
