"""Refuse a hostile HEIC or AVIF from its header alone, before libheif or libavif is handed a byte.

The size a phone photo claims is its primary item's `ispe`; a grid's own
description names its output size and tile layout too, and a decoder
allocates from those, so both are bounded. A grid may reference at most
MAX_TILES tiles (a 48-megapixel phone photo has 192 of 512x512), each of which
must be a coded image itself, and every byte range the primary image and its
tiles name must lie inside the file: a truncated upload is refused as
damaged rather than found short after the pixels were allocated.
"""

from __future__ import annotations

import struct

from common.core import errors
from common.media import isobmff

MAX_TILES = 1024
TILE_OVERHANG = 4  # tiles may overhang the grid's right and bottom edges, by less than a tile each way
CODED = {b"hvc1", b"av01"}  # HEVC (HEIC) and AV1 (AVIF) coded images
DERIVED = {b"grid", b"iden"}  # a grid of tiles; an identity (a rotation or a crop of another item)
NAMES = {"image/heic": "HEIC", "image/heif": "HEIF", "image/avif": "AVIF"}


def claimed_size(data: bytes, kind: str) -> tuple[int, int]:
    """The (width, height) the primary image claims; a 422 when the header is damaged or hostile."""
    name = NAMES.get(kind, "HEIF")
    try:
        header = isobmff.parse(data)
    except (ValueError, IndexError, struct.error) as exc:
        raise _damaged(name, f"its header cannot be read ({exc})" if isinstance(exc, ValueError) else
                       "its header cannot be read") from None
    item = header.primary
    kind_of = header.types.get(item or 0)
    if item is None or kind_of not in CODED | DERIVED or item not in header.sizes:
        raise _damaged(name, "it names no primary image with a size")
    needed = _needed(header, item, name, data)
    for part in needed:
        _check_inside(header, part, data, name)
    if kind_of == b"iden":  # an identity decodes its source whole, then rotates or crops it
        return header.sizes[needed[1]]
    return header.sizes[item]


def _needed(header: isobmff.Header, item: int, name: str, data: bytes) -> list[int]:
    """The items decoding `item` reads: itself, and for a grid or an identity the items it is made of."""
    kind = header.types[item]
    if kind not in DERIVED:
        return [item]
    parts = header.tiles.get(item, [])
    if kind == b"grid":
        _check_grid(header, item, parts, name, data)
    elif len(parts) != 1:
        raise _damaged(name, "its identity item names no single source image")
    if any(header.types.get(p) not in CODED or p not in header.sizes for p in parts):
        raise _damaged(name, "it is made of items that are not coded images with a size")
    if kind == b"grid":
        _check_tiles(header, item, parts, name)
    return [item, *parts]


def _check_tiles(header: isobmff.Header, item: int, tiles: list[int], name: str) -> None:
    """Tiles decode whole: none larger than the grid, and all of them together little more than the grid."""
    width, height = header.sizes[item]
    sizes = [header.sizes[t] for t in tiles]
    if any(w > width or h > height for w, h in sizes) or \
            sum(w * h for w, h in sizes) > TILE_OVERHANG * width * height:
        raise _damaged(name, f"its tiles add up to far more than its {width}x{height} pixels")


def _check_grid(header: isobmff.Header, item: int, tiles: list[int], name: str, data: bytes) -> None:
    if len(tiles) > MAX_TILES:
        raise errors.Unprocessable(f"The {name} image is a grid of {len(tiles):,} tiles; at most {MAX_TILES:,} "
                                   "are decoded. Send a smaller image, or save it as JPEG.", code="too_many_tiles")
    grid = header.item_bytes(item, data, 12)  # flags, rows, columns and the size: 12 bytes at most
    if len(grid) < 8:
        raise _damaged(name, "its grid description is cut short")
    rows, columns = grid[2] + 1, grid[3] + 1
    wide = grid[1] & 1
    width, height = struct.unpack_from(">II" if wide else ">HH", grid, 4) if len(grid) >= (12 if wide else 8) \
        else (0, 0)
    if rows * columns != len(tiles) or (width, height) != header.sizes[item]:
        raise _damaged(name, f"its grid of {rows}x{columns} tiles, {width}x{height} pixels, does not match its "
                       f"{len(tiles)} tiles and {header.sizes[item][0]}x{header.sizes[item][1]} size")


def _check_inside(header: isobmff.Header, item: int, data: bytes, name: str) -> None:
    method, extents = header.places.get(item, (isobmff.FILE, []))
    if not extents and header.types.get(item) in CODED:
        raise _damaged(name, "an image in it has no data")
    end = len(data) if method == isobmff.FILE else header.idat[1] - header.idat[0]
    for offset, length in extents:
        if offset + max(length, 1) > end:
            raise _damaged(name, "its image data lies past its end")


def _damaged(name: str, why: str) -> errors.Unprocessable:
    return errors.Unprocessable(f"The {name} file cannot be read: {why}. It may be truncated or damaged; send the "
                                "complete file.", code="undecodable_image")
