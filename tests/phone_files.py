"""Phone photos made in the test: real HEIC (libheif's x265 encoder, through pillow_heif) and AVIF (Pillow's
own libavif), and hostile ones, real files patched or written box by box."""

from __future__ import annotations

import io
import struct

from PIL import Image

from infra import photos


def photo(name: str) -> Image.Image:
    return Image.open(io.BytesIO(photos.data(name))).convert("RGB")


def heic(img: Image.Image, quality: int = 85, tile: int = 0, **extra: object) -> bytes:
    """A HEIC as a phone saves it; `tile` > 0 makes a grid of tiles of that size (an iPhone's are 512)."""
    import pillow_heif

    out, before = io.BytesIO(), pillow_heif.options.GRID_TILE_SIZE
    pillow_heif.options.GRID_TILE_SIZE = tile
    try:
        pillow_heif.from_pillow(img).save(out, format="HEIF", quality=quality, **extra)
    finally:
        pillow_heif.options.GRID_TILE_SIZE = before
    return out.getvalue()


def avif(img: Image.Image, quality: int = 80, **extra: object) -> bytes:
    out = io.BytesIO()
    img.save(out, "AVIF", quality=quality, **extra)
    return out.getvalue()


def claiming(data: bytes, width: int, height: int) -> bytes:
    """The file with every `ispe` (image size) property claiming width x height: the header lies."""
    at, out = 0, bytearray(data)
    while (at := data.find(b"ispe", at)) > 0:
        out[at + 8:at + 16] = struct.pack(">II", width, height)
        at += 4
    return bytes(out)


def box(kind: bytes, payload: bytes, version: int | None = None, flags: int = 0) -> bytes:
    head = b"" if version is None else struct.pack(">I", version << 24 | flags)
    return struct.pack(">I", 8 + len(head) + len(payload)) + kind + head + payload


def grid_heic(rows: int, columns: int, tile: int = 64, grid_size: tuple[int, int] | None = None) -> bytes:
    """A HEIC whose primary item is a rows x columns grid of hvc1 tiles, all pointing at one 16-byte range
    (tiny file, many tiles to decode); the grid's size is the tiles' unless `grid_size` says otherwise."""
    tiles = rows * columns
    width, height = grid_size or (columns * tile, rows * tile)
    infe = [box(b"infe", struct.pack(">HH4s", 1, 0, b"grid"), 2)]
    infe += [box(b"infe", struct.pack(">HH4s", 2 + i, 0, b"hvc1"), 2) for i in range(tiles)]
    iinf = box(b"iinf", struct.pack(">H", len(infe)) + b"".join(infe), 0)
    grid = struct.pack(">BBBBII", 0, 1, rows - 1, columns - 1, width, height)
    ispe = [box(b"ispe", struct.pack(">II", width, height), 0), box(b"ispe", struct.pack(">II", tile, tile), 0)]
    ipma = struct.pack(">I", 1 + tiles) + struct.pack(">HBB", 1, 1, 0x81)
    ipma += b"".join(struct.pack(">HBB", 2 + i, 1, 0x82) for i in range(tiles))
    iprp = box(b"iprp", box(b"ipco", b"".join(ispe)) + box(b"ipma", ipma, 0))
    iref = box(b"iref", box(b"dimg", struct.pack(">HH", 1, tiles) + b"".join(
        struct.pack(">H", 2 + i) for i in range(tiles))), 0)

    def meta(mdat_at: int) -> bytes:
        places = struct.pack(">HHHIH", 1, 1, 0, 0, 1) + struct.pack(">II", 0, len(grid))  # grid: idat
        places += b"".join(struct.pack(">HHHIH", 2 + i, 0, 0, 0, 1) + struct.pack(">II", mdat_at, 16)
                           for i in range(tiles))
        iloc = box(b"iloc", struct.pack(">BBH", 0x44, 0x40, 1 + tiles) + places, 1)
        return box(b"meta", box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 13, 0) + box(b"pitm", b"\0\x01", 0)
                   + iinf + iloc + iref + iprp + box(b"idat", grid), 0)

    ftyp = box(b"ftyp", b"heic\0\0\0\0mif1heic")
    head = ftyp + meta(0)
    return ftyp + meta(len(head) + 8) + box(b"mdat", b"\0" * 16)


def with_boxes(data: bytes, count: int) -> bytes:
    """The file with `count` empty `free` boxes first in its meta box (Python reads each box it is given)."""
    at = data.find(b"meta") - 4
    size = int.from_bytes(data[at:at + 4], "big")
    filler = box(b"free", b"") * count
    meta = struct.pack(">I", size + len(filler)) + data[at + 4:at + 12] + filler + data[at + 12:at + size]
    return data[:at] + meta + data[at + size:]


def mp4() -> bytes:
    """The start of an MP4 video: an ISO media file, but no image."""
    return box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41") + box(b"mdat", b"\0" * 64)
