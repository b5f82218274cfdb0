"""A PNG read as if its image data were one IDAT chunk, so Pillow inflates it in a few calls, not a hundred.

Pillow hands its PNG decoder one IDAT chunk per call at most (encoders write
them 8 KiB at a time: a 0.8 MB photo is about a hundred), and every call
releases the GIL and takes it back. Taking it back waits for any thread running
Python to let go, up to the switch interval (5 ms), so beside a busy thread (a
request being parsed, a store transaction) a 3 ms decode took hundreds of
milliseconds. Read through `reader`, the chunks are one, and Pillow reads it
`images.DECODE_BLOCK` bytes at a time (`python -m bench.run photos`, its last
table). The pixels are the same: IDAT chunks are one zlib stream cut anywhere.

Nothing is copied to do it: `reader` serves the original bytes, piece by piece.
The joined chunk's CRC is left zero (computing it would give the GIL back once
per chunk again): the file exists only for Pillow's decoder, which does not
check image-data CRCs (`tests/test_png_join.py` decodes through it). Anything
unexpected (not a PNG, a chunk running past the end, image data in runs apart,
more chunks than MAX_CHUNKS) is read as it came, for Pillow to read or refuse.
"""

from __future__ import annotations

import bisect
import io
import itertools
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 4096  # chunks looked at, in Python, one by one: 32 MiB of 8 KiB chunks, far past a body's limit
NO_CRC = bytes(4)


def reader(data: bytes) -> BinaryIO:
    """A file of `data` with its consecutive IDAT chunks read as one; `data` as it is when there is nothing to
    join or anything is unexpected."""
    pieces = _pieces(data)
    return io.BytesIO(data) if pieces is None else Pieces(pieces)  # type: ignore[return-value]


def _pieces(data: bytes) -> list[memoryview | bytes] | None:
    """The file in pieces (before, the joined chunk's head, its data chunk by chunk, a CRC, after), or None to
    leave it as it is."""
    if not data.startswith(SIGNATURE):
        return None
    view, pos, first, idat = memoryview(data), len(SIGNATURE), -1, []
    for _ in range(MAX_CHUNKS):
        if pos + 12 > len(data):
            return None
        length, kind = int.from_bytes(view[pos:pos + 4], "big"), bytes(view[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind == b"IDAT":
            first = pos if first < 0 else first
            idat.append(view[pos + 8:end - 4])
        elif first >= 0:  # the run is over: what follows is read as it is
            if len(idat) < 2 or data.find(b"IDAT", pos) >= 0:  # nothing to join, or image data in two runs
                return None
            size = sum(len(part) for part in idat)
            return [view[:first], size.to_bytes(4, "big") + b"IDAT", *idat, NO_CRC, view[pos:]]
        pos = end
    return None


class Pieces:
    """A read-only file made of pieces end to end: a read copies only what it returns."""

    def __init__(self, pieces: list[memoryview | bytes]) -> None:
        self.pieces = pieces
        self.starts = [0, *itertools.accumulate(len(piece) for piece in pieces)]
        self.size, self.pos = self.starts[-1], 0

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        out, i = [], bisect.bisect_right(self.starts, self.pos) - 1
        while self.pos < end:
            start = self.starts[i]
            out.append(self.pieces[i][self.pos - start:end - start])
            self.pos, i = min(end, self.starts[i + 1]), i + 1
        return b"".join(out)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True
