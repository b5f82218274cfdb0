"""Webhooks: the URL a job or a training run announces its end to, the account's signing secret, the signature.

The signature header is `ImageClassify-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<body>">`, as Stripe signs: a receiver recomputes it over
the raw body with its secret, compares in constant time and refuses a `t`
older than a few minutes (a replay). How the secret is kept: `common/records/webhooks.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from common.adapters.deps import Deps
from common.core import errors
from common.media import hostnames, imagefetch

HEADER, MAX_URL = "ImageClassify-Signature", 2048


def _invalid(why: str) -> errors.BadRequest:
    return errors.BadRequest(f"webhook {why}; give an https URL of your own server, e.g. "
                             "\"https://example.com/hooks/imageclassify\".", code="invalid_webhook")


def check_url(url: Any, loopback: bool) -> str | None:
    """A webhook URL as given, or a 400 `invalid_webhook` (before anything is spent): https (http only to a
    loopback address with FETCH_ALLOW_LOOPBACK=1), a host, no credentials, never an internal name or a private
    address written as such. A name is resolved, and its address checked, at every delivery."""
    if url is None:
        return None
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise _invalid(f"must be a URL of at most {MAX_URL} characters without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise _invalid("is not a valid URL") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("https", "http") or not host or not hostnames.well_formed(host):
        raise _invalid("must be an absolute https URL with a host name")
    if parts.username or parts.password:
        raise _invalid("must not carry credentials")
    local = host == "localhost" or host.endswith(".localhost")
    try:
        address = ipaddress.ip_address(host)
        local = local or address.is_loopback
        if not imagefetch.is_public(address) and not (loopback and address.is_loopback):
            raise _invalid("points to a private, loopback or reserved address")
    except ValueError:
        if host in imagefetch.BLOCKED_HOSTS or host.endswith(".internal") or (local and not loopback):
            raise _invalid("names an internal host") from None
    if parts.scheme == "http" and not (loopback and local):
        raise _invalid("must use https")
    return url


def secret(owner: str, deps: Deps, rotate: bool = False) -> str:
    """The account's webhook secret (made on first use; a new one with `rotate`)."""
    return deps.store.webhook_secret(owner, rotate)


def signature(secret_value: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret_value.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"

