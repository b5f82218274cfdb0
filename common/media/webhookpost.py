"""POST an event to a receiver's URL under the same rules as fetching an image by URL.

The address is vetted and pinned by `common.media.imagefetch` (public
addresses only, loopback with FETCH_ALLOW_LOOPBACK=1, checked at each
attempt, so a name that now resolves inside our network is refused); a
redirect is not followed (its target is never contacted) and counts as a
failed attempt; the whole attempt ends at its deadline; at most `ANSWER_CAP`
bytes of the answer are read.
"""

from __future__ import annotations

import requests

from common.core import errors
from common.media import imagefetch

ANSWER_CAP = 4096


def post(url: str, body: bytes, headers: dict[str, str], seconds: float) -> tuple[str | None, int | None]:
    """(None, status) when the receiver took the event (2xx); else (why not, its status if it answered)."""
    try:
        with imagefetch.deadline(seconds) as watch:
            target = imagefetch.check_url(url)
            response = imagefetch.pinned_request(target, watch.at, "POST", body, headers)
            with response:
                status = response.status_code
                if response.is_redirect or 300 <= status < 400:
                    location = response.headers.get("Location", "")[:200]
                    return (f"The receiver answered {status}, redirecting to {location!r}; webhooks do not follow "
                            "redirects: give the final URL."), status
                if 200 <= status < 300:
                    return None, status
                return f"The receiver answered HTTP {status}: {_answer(response)!r}", status
    except errors.AppError as exc:
        return exc.message, None
    except requests.RequestException as exc:
        timeout = isinstance(exc, requests.Timeout) or "timed out" in str(exc)
        return ("The receiver did not answer within the time limit." if timeout else
                f"The receiver could not be reached ({type(exc).__name__})."), None


def _answer(response: requests.Response) -> str:
    """The start of an answer, never more than ANSWER_CAP bytes read."""
    read = bytearray()
    try:
        for chunk in response.iter_content(1024):
            read += chunk
            if len(read) >= ANSWER_CAP:
                break
    except requests.RequestException:
        pass
    return read[:200].decode("utf-8", "replace")
