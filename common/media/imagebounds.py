"""Refuse, before any pixel is decoded, an image whose header claims more pixels than its bytes can hold.

Decoders allocate the whole image first and find the data missing only after:
a 138-byte TIFF claiming 6000x6000 allocated its full size before its 422.
Each compression method has a ceiling on how many bytes of pixels one byte of
data can become (deflate's is about 1032); past it the file cannot be
complete, so it is refused as damaged without decoding. TIFF also names where
its strips or tiles lie, which must be inside the file. Other formats are
bounded by the decode gate (`common/media/decodegate.py`); JPEG decodes at a
reduced scale anyway.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from common.core import errors

DEFLATE = 1100  # deflate expands at most about 1032-fold; the rest is a margin for headers
# TIFF compression tag -> ceiling: none, PackBits (64-fold), Deflate (two tags), LZW (12-bit codes)
TIFF_RATIOS = {1: 1.0, 32773: 70.0, 8: DEFLATE, 32946: DEFLATE, 5: 3000.0}
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by IHDR colour type
TIFF_WIDTH, TIFF_HEIGHT, TIFF_BITS, TIFF_COMPRESSION, TIFF_SAMPLES = 256, 257, 258, 259, 277
TIFF_PLACES = ((273, 279), (324, 325))  # (strip offsets, strip byte counts), (tile offsets, tile byte counts)


def check_plausible(img: Image.Image, data: bytes) -> None:
    """A 422 when the file's bytes cannot hold the pixels its header claims."""
    if img.format == "PNG" and data[12:16] == b"IHDR":
        bits = data[24] * PNG_CHANNELS.get(data[25], 4)
        _refuse_past(img, data, _raw_bytes(img.size, bits), len(data), DEFLATE)
    elif img.format == "TIFF":
        _check_tiff(img, data)


def _raw_bytes(size: tuple[int, int], bits_per_pixel: int) -> int:
    """The bytes of the pixels' rows, each row padded to a whole byte."""
    return size[1] * math.ceil(size[0] * bits_per_pixel / 8)


def _check_tiff(img: Image.Image, data: bytes) -> None:
    tags: Any = getattr(img, "tag_v2", {})
    for offsets_tag, counts_tag in TIFF_PLACES:
        offsets, counts = _ints(tags.get(offsets_tag)), _ints(tags.get(counts_tag))
        if not counts:
            continue
        if any(offset + count > len(data) for offset, count in zip(offsets, counts, strict=False)):
            raise _implausible(img, data, "its pixel data lies past its end")
        per_sample, samples = _ints(tags.get(TIFF_BITS)) or [1], int(tags.get(TIFF_SAMPLES, 1) or 1)
        bits = sum(per_sample) if len(per_sample) == samples else per_sample[0] * samples
        ratio = TIFF_RATIOS.get(int(tags.get(TIFF_COMPRESSION, 1) or 1))
        if ratio is not None:  # other methods (JPEG, fax, LZMA...) have no ceiling worth a check here
            _refuse_past(img, data, _raw_bytes(img.size, bits), sum(counts), ratio)


def _ints(value: Any) -> list[int]:
    if value is None:
        return []
    values = value if isinstance(value, (tuple, list)) else (value,)
    return [int(v) for v in values if isinstance(v, (int, float))]


def _refuse_past(img: Image.Image, data: bytes, raw: int, stored: int, ratio: float) -> None:
    if raw > ratio * max(stored, 1):
        raise _implausible(img, data, f"{stored:,} bytes of pixel data cannot hold them")


def _implausible(img: Image.Image, data: bytes, why: str) -> errors.Unprocessable:
    return errors.Unprocessable(f"The {img.format} file claims {img.size[0]}x{img.size[1]} pixels in {len(data):,} "
                                f"bytes, but {why}: it is truncated or damaged. Send the complete file.",
                                code="undecodable_image")
