"""What kind of image a file is, from its first bytes alone: no image library, nothing decoded.

`/files` stores only images (and answers their media type); the classifier
tells a damaged image (a known signature it cannot read: 422) from something
that is no image at all (415).
"""

from __future__ import annotations

SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
              (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))
BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}  # the DIB headers Pillow reads


def media_type(data: bytes) -> str | None:
    """The media type the first bytes announce, or None when they are no image format we read."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in SIGNATURES:
        if data.startswith(magic) and (magic != b"BM" or _bmp_header(data)):
            return kind
    return None


def _bmp_header(data: bytes) -> bool:
    """'BM' is two letters any text may start with; a bitmap follows them with a DIB header of a known size."""
    return int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES
