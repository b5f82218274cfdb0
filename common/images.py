"""Turn untrusted image bytes into the model's input crop, safely and fast.

The header is read first and the pixel count checked before any pixel is
decoded, so a decompression bomb fails in microseconds. JPEGs are decoded at a
reduced scale (`draft`) when they are much larger than needed, which is where
most of the decode time goes. Then: EXIF orientation, RGB (palette, alpha,
CMYK, 16-bit and greyscale all handled), shorter side resized to `resize`
with bicubic filtering, centre crop. This reproduces the reference crops of
the original EfficientNet-Lite0 pipeline exactly.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common import errors
from common.config import settings

FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]
SNIFF = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"<?xml": "an XML document",
    b"<svg": "an SVG drawing (vector images are not supported)",
    b"{": "JSON text",
    b"<!DOCTYPE": "an HTML page",
    b"<html": "an HTML page",
}


def describe(data: bytes) -> str:
    head = data[:16].lstrip()
    for magic, what in SNIFF.items():
        if head[: len(magic)].lower() == magic.lower():
            return what
    try:
        data[:512].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of an unknown type"


def open_image(data: bytes) -> Image.Image:
    """Open and check an image without decoding its pixels."""
    if not data:
        raise errors.BadRequest("The image is empty (0 bytes). Send the image file's content.", code="empty_image")
    max_pixels = settings().max_image_pixels
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise too_many_pixels(None, max_pixels) from None
        raise errors.UnsupportedMediaType(
            f"This is not an image we can read: it looks like {describe(data)}. "
            f"Send a JPEG, PNG, GIF, WebP, BMP or TIFF file.", code="not_an_image") from None
    width, height = img.size
    if width * height > max_pixels:
        raise too_many_pixels((width, height), max_pixels)
    if width < 1 or height < 1:
        raise errors.Unprocessable("The image has no pixels.")
    return img


def too_many_pixels(size: tuple[int, int] | None, limit: int) -> errors.Unprocessable:
    dims = f" ({size[0]}x{size[1]})" if size else ""
    return errors.Unprocessable(f"The image{dims} has more than {limit:,} pixels. Send a smaller image.",
                                code="too_many_pixels")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def prepare(data: bytes, size: int = 224, resize: int = 256, use_draft: bool = True) -> np.ndarray:
    """The HxWx3 uint8 centre crop the model takes, from image file bytes."""
    img = open_image(data)
    try:
        if use_draft and img.format == "JPEG":
            w, h = img.size
            scale = 2 * resize / min(w, h)
            if scale < 1:
                img.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
        img.seek(0)  # animated images: the first frame
        img = ImageOps.exif_transpose(img) or img
        img = _to_rgb(img)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise errors.Unprocessable(f"The image could not be decoded ({type(exc).__name__}): it may be truncated "
                                   "or corrupt. Send the complete file.", code="undecodable_image") from None
    w, h = img.size
    s = resize / min(w, h)
    new = (resize, max(resize, round(h * s))) if w <= h else (max(resize, round(w * s)), resize)
    img = img.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
