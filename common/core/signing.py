"""Messages the product sends itself are signed, so an internal endpoint can refuse what it did not send.

The queue's messages carry `sig`, an HMAC-SHA256 of their content under
INTERNAL_SECRET (the local stack keeps one per data folder; the cloud reads it
from Secret Manager). A worker refuses a message whose signature is missing or
wrong when a secret is configured; without one it relies on the platform alone
(internal ingress and OIDC-authenticated push), as a cloud deployment may.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from common.core.config import settings

FIELD = "sig"


def mac(secret: str, message: dict[str, Any]) -> str:
    content = json.dumps({k: v for k, v in message.items() if k != FIELD}, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret.encode(), content.encode(), hashlib.sha256).hexdigest()


def sign(message: dict[str, Any]) -> dict[str, Any]:
    secret = settings().queue.internal_secret
    return {**message, FIELD: mac(secret, message)} if secret else dict(message)


def verified(message: Any) -> bool:
    """Whether a message was signed by us (always true when no secret is configured)."""
    secret = settings().queue.internal_secret
    if not secret:
        return True
    if not isinstance(message, dict) or not isinstance(message.get(FIELD), str):
        return False
    return hmac.compare_digest(message[FIELD].encode(errors="replace"), mac(secret, message).encode())  # never raises
