"""The caller's network address, as far as the configured proxies can be trusted to report it.

Shared by the sign-up and password throttles (`common.http.auth`, `common.accounts.service`) and the request log line
(`common.http.requestlog`). Only the entries our own proxies appended to X-Forwarded-For are believed (the
last TRUSTED_PROXIES ones): whatever a client writes there itself comes before them and is ignored. In
the cloud (TRUSTED_PROXIES=1) that is the address Google's front end saw; locally, the peer.
"""

from __future__ import annotations

import ipaddress

import flask

from common.core.config import settings

IPV6_HOST_BITS = 64  # an IPv6 host is handed a /64: counting its addresses one by one would count nothing


def client_address(request: flask.Request) -> str:
    """The caller's address: the peer, or with TRUSTED_PROXIES=n the address the n-th proxy from us saw."""
    hops = settings().accounts.trusted_proxies
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.remote_addr or "unknown"


def network(address: str) -> str:
    """What the abuse limits count as one caller: an IPv4 address, or the /64 an IPv6 address is in (written as
    its first address); anything that is not an address is one caller, `unknown`."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_HOST_BITS), strict=False).network_address)
    return str(ip)


def client_network(request: flask.Request) -> str:
    return network(client_address(request))
