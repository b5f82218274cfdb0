"""Turn untrusted image bytes into the model's input crop, safely and fast.

The header is read first and the pixel count, aspect ratio and the pixels the
file's bytes can hold (`common/media/imagebounds.py`) checked before any pixel is
decoded, so a decompression bomb, a 65000x1 sliver or a tiny file claiming a
huge image fails in microseconds. Images of many pixels take turns under a
per-process pixel budget (`common/media/decodegate.py`); photos never wait. JPEGs
are decoded at a reduced scale (`draft`) when they are much larger than
needed, which is where most of the decode time goes. HEIC and AVIF are bounded
from their own header before libheif or libavif reads it (`common/media/heifbounds.py`),
and pillow_heif is imported on the first HEIC only. Then: EXIF orientation,
RGB (palette, alpha, CMYK, 16-bit and greyscale all handled), and the one
region of the image the model sees (shorter side scaled to `resize`, centre
`size` square) resized bicubically, with antialiasing, straight to the crop:
the work is bounded by the crop, not by the image's shape.
`prepare(..., exact=True)` is the reference pipeline step by step, which
reproduces the reference crops of the original EfficientNet-Lite0 bit for bit.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.core import errors
from common.core.config import settings
from common.media import decodegate, heifbounds, imagebounds, imagetypes, pngjoin

# Longest side over shortest side past which an image is refused (see `check_aspect_ratio`).
MAX_ASPECT_RATIO = 20
BICUBIC_SUPPORT = 2.0  # Pillow's bicubic filter reaches 2 pixels (times the downscale factor) each side
# Past a 3x downscale, Pillow first averages whole pixel blocks (`Image.reduce`), then filters bicubically over
# the rest: its documented "indistinguishable from fair resampling" setting, several times faster on big images.
REDUCING_GAP = 3.0
# Bytes a decoder call takes: each call gives the GIL back and waits to take it again (common/media/pngjoin.py).
# Past a few hundred KiB, the block is a fresh allocation each time, whose pages cost more than the waits saved.
DECODE_BLOCK = 256 * 1024
BAND_BLOCKS = 64  # rows of the reduced image converted to RGB at a time (see `_reduced_rgb`)
FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]
HEIF_FORMATS = {"image/avif": ["AVIF"], "image/heic": ["HEIF"], "image/heif": ["HEIF", "AVIF"]}
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
    if data[4:8] == b"ftyp":
        return "a video or another ISO media file, not an image"
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
    kind, formats = imagetypes.media_type(data), FORMATS
    if kind in HEIF_FORMATS:  # bounded from our own reading of its header before a library parses it
        check_size(heifbounds.claimed_size(data, kind))
        formats = HEIF_FORMATS[kind]
        if "HEIF" in formats:
            _heif_opener()
    try:
        img = Image.open(pngjoin.reader(data) if kind == "image/png" else io.BytesIO(data), formats=formats)
        img.decodermaxblock = DECODE_BLOCK
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise too_many_pixels(None, settings().models.max_image_pixels) from None
        if kind is not None:  # an image's signature, then a header no reader can make sense of
            raise errors.Unprocessable(f"The file starts like {kind.split('/')[1].upper()} but its header cannot be "
                                       "read: it may be truncated or damaged. Send the complete file.",
                                       code="undecodable_image") from None
        raise errors.UnsupportedMediaType(
            f"This is not an image we can read: it looks like {describe(data)}. "
            f"Send a {imagetypes.READ} file.", code="not_an_image") from None
    check_size(img.size)
    imagebounds.check_plausible(img, data)
    return img


def check_size(size: tuple[int, int]) -> None:
    """At most MAX_IMAGE_PIXELS pixels, at least one, and no sliver (`check_aspect_ratio`)."""
    width, height = size
    max_pixels = settings().models.max_image_pixels
    if width * height > max_pixels:
        raise too_many_pixels((width, height), max_pixels)
    if width < 1 or height < 1:
        raise errors.Unprocessable(f"The image is {width}x{height}: it has no pixels. Send an image with some.",
                                   code="no_pixels")
    check_aspect_ratio(size)


@functools.cache
def _heif_opener() -> None:
    """Teach Pillow HEIC on the first one: a process that never sees one never imports pillow_heif (cold start).
    Thumbnails, depth maps and auxiliary images are never read; only the primary image is classified."""
    import pillow_heif

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def too_many_pixels(size: tuple[int, int] | None, limit: int) -> errors.Unprocessable:
    dims = f" ({size[0]}x{size[1]})" if size else ""
    return errors.Unprocessable(f"The image{dims} has more than {limit:,} pixels. Send a smaller image.",
                                code="too_many_pixels")


def check_aspect_ratio(size: tuple[int, int]) -> None:
    """Refuse slivers: past MAX_ASPECT_RATIO the centre crop would show under 5 % of the image.

    The model sees a square cut from the middle of the image scaled so its short
    side is `resize`; at 20:1 that square covers 224 / (256 * 20) = 4.4 % of the
    long side, so the answer would describe a sliver, not the image. Real photos
    stay well inside: phone panoramas reach about 10:1, web banners about 12:1.
    """
    width, height = size
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise errors.Unprocessable(
            f"The image is {width}x{height}, {ratio:,.0f} times longer than it is wide; at most "
            f"{MAX_ASPECT_RATIO}:1 is classified, because the model only sees a square from the middle. "
            "Crop the image to the part you want classified and send that.", code="bad_aspect_ratio")


def _grey_scale(img: Image.Image) -> float | None:
    """For 16/32-bit and float images, the value that maps to white (from the whole image, before cropping)."""
    if img.mode.startswith("I;16"):
        return 65535.0
    if img.mode in ("I", "F"):
        high = img.getextrema()[1]
        return max(float(high) if isinstance(high, (int, float)) else 1.0, 1.0)
    return None


def _to_rgb(img: Image.Image, top: float | None) -> Image.Image:
    """RGB pixels, transparency flattened onto white; copies kept to one or two images' worth."""
    if top is not None:
        deep = np.asarray(img)
        grey = np.empty(deep.shape, dtype=np.uint8)
        for row in range(0, deep.shape[0], 256):  # in bands: never the whole image in float64
            grey[row:row + 256] = np.clip(deep[row:row + 256] * (255.0 / top), 0, 255).astype(np.uint8)
        img = Image.fromarray(grey, "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # the mask is rgba's own alpha band
        return background
    return img.convert("RGB")


def scaled_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """The image's size once its short side is `resize` (the reference pipeline's rounding)."""
    scale = resize / min(width, height)
    if width <= height:
        return resize, max(resize, round(height * scale))
    return max(resize, round(width * scale)), resize


def crop_box(width: int, height: int, size: int, resize: int) -> tuple[float, float, float, float]:
    """The part of a width x height image that becomes the model's size x size centre crop.

    In source pixels: the image scaled so its short side is `resize`, then its
    centre `size` square cut out, is exactly this box resized to size x size.
    """
    new = scaled_size(width, height, resize)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    fx, fy = width / new[0], height / new[1]
    return left * fx, top * fy, (left + size) * fx, (top + size) * fy


def _region(box: tuple[float, float, float, float], width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The whole pixels the bicubic filter reads for `box`: the box plus the filter's reach on each side."""
    reach_x = BICUBIC_SUPPORT * max((box[2] - box[0]) / size, 1.0) + 2
    reach_y = BICUBIC_SUPPORT * max((box[3] - box[1]) / size, 1.0) + 2
    return (max(0, math.floor(box[0] - reach_x)), max(0, math.floor(box[1] - reach_y)),
            min(width, math.ceil(box[2] + reach_x)), min(height, math.ceil(box[3] + reach_y)))


def _opened(data: bytes, resize: int, use_draft: bool) -> Image.Image:
    """The image checked from its header, not decoded yet; a JPEG set to decode at a reduced scale."""
    img = open_image(data)
    if use_draft and img.format == "JPEG":
        w, h = img.size
        scale = 2 * resize / min(w, h)
        if scale < 1:  # decode at a reduced scale (DCT scaling): never below twice the resize target
            img.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
    return img


def _decode(img: Image.Image, size: int, resize: int,
            exact: bool) -> tuple[Image.Image, tuple[float, float, float, float] | None]:
    """The RGB pixels the crop is made from, and the crop's box within them.

    RGB images are resized straight from the decoder's buffer (no copy). Others are
    converted to RGB first: only the region around the crop, and when it is much
    larger than the crop, a band of rows at a time, each reduced as it is converted,
    so no second full-size copy is made. The box is None when the reference pipeline
    is to run: asked for, or the image no larger than needed (upscaled, it is at most
    resize x 20*resize: small whatever its shape).
    """
    img.seek(0)  # animated images: the first frame
    ImageOps.exif_transpose(img, in_place=True)
    w, h = img.size
    if exact or min(w, h) <= resize:
        return (img if img.mode == "RGB" else _to_rgb(img, _grey_scale(img))), None
    box = crop_box(w, h, size, resize)
    if img.mode == "RGB":
        return img, box
    top = _grey_scale(img)
    region = _region(box, w, h, size)
    factor = int((box[2] - box[0]) / size / REDUCING_GAP)  # what the resize would average blocks of, anyway
    if factor >= 2:
        return _reduced_rgb(img, top, region, factor), _shifted(box, region, factor)
    if 2 * (region[2] - region[0]) * (region[3] - region[1]) < w * h:
        img = img.crop(region)
        box = _shifted(box, region, 1)
    return _to_rgb(img, top), box


def _shifted(box: tuple[float, float, float, float], region: tuple[int, int, int, int],
             factor: int) -> tuple[float, float, float, float]:
    """`box` within `region` once the region is cut out and reduced `factor`-fold."""
    return ((box[0] - region[0]) / factor, (box[1] - region[1]) / factor, (box[2] - region[0]) / factor,
            (box[3] - region[1]) / factor)


def _reduced_rgb(img: Image.Image, top: float | None, region: tuple[int, int, int, int], factor: int) -> Image.Image:
    """The region in RGB, reduced `factor`-fold by averaging blocks, converted a band of rows at a time."""
    x0, y0, x1, y1 = region
    out = Image.new("RGB", (math.ceil((x1 - x0) / factor), math.ceil((y1 - y0) / factor)))
    step = factor * BAND_BLOCKS
    for y in range(y0, y1, step):
        band = _to_rgb(img.crop((x0, y, x1, min(y1, y + step))), top)
        out.paste(band.reduce(factor), (0, (y - y0) // factor))
    return out


def prepare(data: bytes, size: int = 224, resize: int = 256, use_draft: bool = True,
            exact: bool = False) -> np.ndarray:
    """The HxWx3 uint8 centre crop the model takes, from image file bytes.

    When the image is larger than needed, the crop's box is resized straight to
    size x size, which costs a fraction of resizing the whole image and cropping;
    pixel for pixel that can differ from the reference pipeline by rounding (a few
    levels out of 255 on some pixels; class probabilities move by under 0.01). Smaller images, and any image
    with `exact=True`, go through the reference pipeline itself (whole image
    resized, then cropped), which reproduces the reference crops bit for bit.
    """
    try:
        img = _opened(data, resize, use_draft)
        with decodegate.gate(settings().models.max_image_pixels).decoding(img.width * img.height):
            crop = _crop(*_decode(img, size, resize, exact), size, resize)
            del img  # the decoded pixels go before the next large decode may start
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise errors.Unprocessable(f"The image could not be decoded ({type(exc).__name__}): it may be truncated "
                                   "or corrupt. Send the complete file.", code="undecodable_image") from None
    return np.asarray(crop, dtype=np.uint8)


def _crop(img: Image.Image, box: tuple[float, float, float, float] | None, size: int, resize: int) -> Image.Image:
    if box is None:
        new = scaled_size(img.width, img.height, resize)
        left, top = (new[0] - size) // 2, (new[1] - size) // 2
        return img.resize(new, Image.Resampling.BICUBIC).crop((left, top, left + size, top + size))
    return img.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=REDUCING_GAP)
