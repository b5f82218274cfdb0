"""How deeply a JSON body may nest, checked on the raw bytes before anything parses them.

Python's parser recurses once per `[` or `{`: a 200 kB body of `{"a":` nested
100,000 deep ends in a RecursionError, and a body just under the recursion
limit parses but breaks whatever walks the result later. No request of this
API nests deeper than a handful of levels, so anything past `MAX_DEPTH` is a
400 before it is parsed.

The scan is cheap: a body with at most `MAX_DEPTH` brackets in all (every real
request) is passed without looking further; otherwise strings are cut out and
the running depth of the remaining brackets is summed in C (`accumulate`), in
blocks, stopping at the first block that goes too deep.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from common.core import errors

MAX_DEPTH = 32
BLOCK = 1 << 16
# a JSON string, possessive so that a hostile body cannot make the pattern backtrack
STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
STEP = tuple(1 if b in b"[{" else -1 for b in range(256))
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `raw` nests deeper than `limit` (an upper bound for malformed text)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = STRING.sub(b"", raw).translate(None, NOT_BRACKETS)
    depth = 0
    for start in range(0, len(brackets), BLOCK):
        running = list(accumulate(map(STEP.__getitem__, brackets[start:start + BLOCK]), initial=depth))
        if max(running) > limit:
            return True
        depth = running[-1]
    return False


def refusal() -> errors.BadRequest:
    return errors.BadRequest(f"The JSON body nests more than {MAX_DEPTH} levels deep. Send a flat JSON object "
                             "such as {\"username\": ..., \"password\": ...}.", code="json_too_deep")


def loads(raw: bytes | str, *, depth_checked: bool = False) -> Any:
    """`json.loads` with the depth bound: a 400 for deep nesting or text that is not UTF-8 Unicode (RFC 8259
    allows nothing else; Python's parser would also take UTF-16 and UTF-32), ValueError for text that is not
    JSON. `depth_checked`: these very bytes were scanned already (by the HTTP guard), so they are not again."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not depth_checked and too_deep(data):
        raise refusal()
    try:
        text = data.decode("utf-8")  # strict: encoded surrogates and other encodings end here
    except UnicodeDecodeError:
        raise errors.BadRequest("The JSON body is not UTF-8 text. Send it encoded as UTF-8.",
                                code="invalid_unicode") from None
    try:
        parsed = json.loads(text)
    except RecursionError:  # a parser that recurses more than the scan counted: still the client's fault
        raise refusal() from None
    if SURROGATE_ESCAPE.search(text):
        try:  # escaped pairs that form one character are fine; a lone half cannot be encoded
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise errors.BadRequest("The JSON body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is "
                                    "not a character. Send valid Unicode text.", code="invalid_unicode") from None
    return parsed
