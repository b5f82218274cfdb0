"""The header of a HEIF or AVIF file (ISO base media boxes), read in Python before libheif or libavif sees it.

Phones save HEIC (HEVC in HEIF) and AVIF (AV1 in HEIF): a `ftyp` box naming
the brands, then a `meta` box listing items (coded images, grids of tiles,
Exif), where each item's bytes lie (`iloc`), its properties (`ipco`/`ipma`,
`ispe` being the size) and which items a grid is made of (`iref`/`dimg`). Only
what the bounds need is read (`common/media/heifbounds.py`); any box that does
not parse is a `ValueError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

FILE, IDAT = 0, 1  # iloc construction methods: offsets in the file, or in the meta box's idat
MAX_BOXES = 4096  # per container, and items per list: a phone photo has under a hundred; this is Python per box
MAX_ENTRIES = 4 * MAX_BOXES  # list entries (items, extents, references, links) in a whole header: one budget, so
# lists of lists cannot multiply into millions of steps and tuples from a few kilobytes


@dataclass
class Header:
    brands: set[bytes] = field(default_factory=set)
    primary: int | None = None
    types: dict[int, bytes] = field(default_factory=dict)  # item id -> item type (hvc1, av01, grid...)
    places: dict[int, tuple[int, list[tuple[int, int]]]] = field(default_factory=dict)  # id -> (method, extents)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> ispe (width, height)
    tiles: dict[int, list[int]] = field(default_factory=dict)  # grid id -> the items it is made of (dimg)
    idat: tuple[int, int] = (0, 0)  # where the meta box's idat payload lies in the file
    entries: int = 0  # list entries read so far, against MAX_ENTRIES

    def item_bytes(self, item: int, data: bytes, most: int) -> bytes:
        """The first `most` bytes of an item's payload (a grid's description is a few bytes, usually in idat):
        never more, however many extents repeat the whole file."""
        method, extents = self.places.get(item, (FILE, []))
        base, end = (0, len(data)) if method == FILE else self.idat
        read = b""
        for offset, length in extents:
            if len(read) >= most:
                break
            read += data[base + offset:min(end, base + offset + length, base + offset + most - len(read))]
        return read

    def charge(self, count: int) -> int:
        """Count `count` list entries against the header's budget; `count` back, or a ValueError past it."""
        self.entries += count
        if self.entries > MAX_ENTRIES:
            raise ValueError(f"more than {MAX_ENTRIES:,} list entries in the header")
        return count


def boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between start and end."""
    at, count = start, 0
    while at + 8 <= end:
        count += 1
        if count > MAX_BOXES:
            raise ValueError(f"more than {MAX_BOXES} boxes in one container")
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < head or at + size > end:
            raise ValueError(f"the {kind!r} box runs past its container")
        yield kind, at + head, at + size
        at += size


def parse(data: bytes) -> Header:
    header = Header()
    for kind, start, end in boxes(data, 0, len(data)):
        if kind == b"ftyp":
            header.brands = {data[i:i + 4] for i in range(start, end - 3, 4) if i != start + 4}
        elif kind == b"meta":
            _meta(data, start + 4, end, header)
            return header
    return header


def _meta(data: bytes, start: int, end: int, header: Header) -> None:
    for kind, at, stop in boxes(data, start, end):
        version = data[at]
        if kind == b"pitm":
            header.primary = _uint(data, at + 4, 2 if version == 0 else 4)
        elif kind == b"iinf":
            for entry, entry_at, _ in boxes(data, at + (6 if version == 0 else 8), stop):
                if entry == b"infe" and data[entry_at] >= 2:
                    width = 2 if data[entry_at] == 2 else 4
                    item = _uint(data, entry_at + 4, width)
                    header.types[item] = data[entry_at + 6 + width:entry_at + 10 + width]
        elif kind == b"iloc":
            _iloc(data, at, header)
        elif kind == b"iref":
            for _, ref_at, _ in ((k, a, s) for k, a, s in boxes(data, at + 4, stop) if k == b"dimg"):
                width = 2 if version == 0 else 4
                count = header.charge(_count(data, ref_at + width, 2))
                header.tiles[_uint(data, ref_at, width)] = [
                    _uint(data, ref_at + width + 2 + i * width, width) for i in range(count)]
        elif kind == b"iprp":
            _properties(data, at, stop, header)
        elif kind == b"idat":
            header.idat = (at, stop)


def _iloc(data: bytes, at: int, header: Header) -> None:
    version = data[at]
    sizes, more = data[at + 4], data[at + 5]
    offset_size, length_size, base_size = sizes >> 4, sizes & 15, more >> 4
    index_size = more & 15 if version in (1, 2) else 0
    id_size = 4 if version == 2 else 2
    count, at = header.charge(_count(data, at + 6, id_size)), at + 6 + id_size
    for _ in range(count):
        item, at = _uint(data, at, id_size), at + id_size
        method = 0
        if version in (1, 2):
            method, at = data[at + 1] & 15, at + 2
        base = _uint(data, at + 2, base_size)
        extents, at = header.charge(_count(data, at + 2 + base_size, 2)), at + 4 + base_size
        places = []
        for _ in range(extents):
            at += index_size
            offset, length = _uint(data, at, offset_size), _uint(data, at + offset_size, length_size)
            places.append((base + offset, length))
            at += offset_size + length_size
        header.places[item] = (method, places)


def _properties(data: bytes, start: int, end: int, header: Header) -> None:
    found: list[tuple[bytes, int]] = []
    for kind, at, stop in boxes(data, start, end):
        if kind == b"ipco":
            found = [(k, a) for k, a, _ in boxes(data, at, stop)]
        elif kind == b"ipma":
            version, wide = data[at], data[at + 3] & 1
            count, at = header.charge(_count(data, at + 4, 4)), at + 8
            for _ in range(count):
                item, at = _uint(data, at, 2 if version == 0 else 4), at + (2 if version == 0 else 4)
                links, at = header.charge(data[at]), at + 1
                for _ in range(links):
                    index = _uint(data, at, 2) & 0x7FFF if wide else data[at] & 0x7F
                    at += 2 if wide else 1
                    if 0 < index <= len(found) and found[index - 1][0] == b"ispe":
                        header.sizes[item] = struct.unpack_from(">II", data, found[index - 1][1] + 4)


def _count(data: bytes, at: int, width: int) -> int:
    """A list's length, refused past MAX_BOXES before the list is walked."""
    count = _uint(data, at, width)
    if count > MAX_BOXES:
        raise ValueError(f"a list of {count:,} items")
    return count


def _uint(data: bytes, at: int, width: int) -> int:
    if width == 0:
        return 0
    if at + width > len(data):
        raise ValueError("a box ends early")
    return int.from_bytes(data[at:at + width], "big")
