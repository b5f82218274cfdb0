"""A PNG's image data joined into one IDAT chunk, so Pillow inflates it in one call.

Pillow hands its PNG decoder one IDAT chunk per call (encoders write them 8 KiB
at a time: a 0.8 MB photo is about a hundred), and every call releases the
GIL and takes it back. Taking it back waits for any thread running Python to
let go, up to the switch interval (5 ms), so beside a busy thread (a request
being parsed, a store transaction) a 3 ms decode took hundreds of
milliseconds. Joined, the decode releases the GIL once (`python -m bench.run photos`, its last table).
The pixels are the same: IDAT chunks are one zlib stream cut anywhere.

Anything unexpected (not a PNG, a chunk running past the end, image data in
runs apart, more chunks than MAX_CHUNKS) returns the bytes unchanged, for
Pillow to read or refuse as before.
"""

from __future__ import annotations

import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 4096  # chunks looked at, in Python, one by one: 32 MiB of 8 KiB chunks, far past a body's limit


def one_idat(data: bytes) -> bytes:
    """`data` with its consecutive IDAT chunks made one (CRC included); `data` itself when there is nothing to
    join or anything is unexpected."""
    if not data.startswith(SIGNATURE):
        return data
    view, pos, first, parts = memoryview(data), len(SIGNATURE), -1, []
    for _ in range(MAX_CHUNKS):
        if pos + 12 > len(data):
            return data
        length, kind = int.from_bytes(view[pos:pos + 4], "big"), bytes(view[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return data
        if kind == b"IDAT":
            first = pos if first < 0 else first
            parts.append(view[pos + 8:end - 4])
        elif first >= 0:  # the run is over: what follows is copied as it is
            if len(parts) < 2 or data.find(b"IDAT", pos) >= 0:  # nothing to join, or image data in two runs
                return data
            body = b"".join(parts)
            crc = zlib.crc32(body, zlib.crc32(b"IDAT"))
            return b"".join((view[:first], len(body).to_bytes(4, "big"), b"IDAT", body, crc.to_bytes(4, "big"),
                             view[pos:]))
        pos = end
    return data
