"""Odd and hostile images, made on the fly from the shipped photos."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from infra import photos


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def coffee() -> Image.Image:
    return Image.open(io.BytesIO(photos.data("coffee.png"))).convert("RGB")


def jpeg(img: Image.Image | None = None, quality: int = 90) -> bytes:
    return encode(img or coffee(), "JPEG", quality=quality)


def truncated_jpeg() -> bytes:
    data = jpeg()
    return data[: len(data) // 2]


def png_bomb(side: int = 10000) -> bytes:
    """A tiny PNG that claims side x side pixels of zeros (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # greyscale, 8 bits
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # the first rows only: the rest is never read
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [coffee().resize((200, 133)), Image.new("RGB", (200, 133), (255, 0, 0))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    return encode(coffee().convert("CMYK"), "JPEG")


def png16() -> bytes:
    import numpy as np

    grey = (np.asarray(coffee().convert("L"), dtype=np.uint16) * 257)
    return encode(Image.fromarray(grey), "PNG")


def rgba_png() -> bytes:
    img = coffee().convert("RGBA")
    img.putalpha(200)
    return encode(img, "PNG")


def exif_rotated_jpeg() -> bytes:
    """coffee.png stored rotated on its side, with EXIF orientation 6 asking viewers to turn it back."""
    img = coffee().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif.tobytes(), quality=92)


def one_pixel() -> bytes:
    return encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")
