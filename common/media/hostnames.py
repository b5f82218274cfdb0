"""Whether a URL's host could name a machine at all, before anything asks DNS about it.

A host such as `a b` or `a..b` is the caller's typo: a 400 that says so, not a
502 after a lookup that could never succeed.
"""

from __future__ import annotations

import ipaddress
import re

HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")  # hyphens at either end too: such names exist and resolve


def well_formed(host: str) -> bool:
    """An IP literal, or a DNS name (international ones in their IDNA form) of at most 253 characters."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in ascii_host.split("."))
