"""The caller's network address, as far as the configured proxies can be trusted to report it.

Shared by the sign-up throttle (`common.httpauth`) and the request log line (`common.requestlog`).
"""

from __future__ import annotations

import flask

from common.config import settings


def client_address(request: flask.Request) -> str:
    """The caller's address: the peer, or with TRUSTED_PROXIES=n the address the n-th proxy from us saw."""
    hops = settings().trusted_proxies
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.remote_addr or "unknown"
