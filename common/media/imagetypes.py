"""What kind of image a file is, from its first bytes alone: no image library, nothing decoded.

`/files` stores only images (and answers their media type); the classifier
tells a damaged image (a known signature it cannot read: 422) from something
that is no image at all (415). HEIC and AVIF (what phones save) are ISO media
files: a `ftyp` box whose brands say what the file holds; a video or any other
ISO media file is no image.
"""

from __future__ import annotations

SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
              (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))
BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}  # the DIB headers Pillow reads
HEIF_BRANDS = ((b"avif avis", "image/avif"), (b"heic heix heim heis hevc hevx", "image/heic"),
               (b"mif1 msf1", "image/heif"))
READ = "JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC or AVIF"  # what the messages offer


def media_type(data: bytes) -> str | None:
    """The media type the first bytes announce, or None when they are no image format we read."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in SIGNATURES:
        if data.startswith(magic) and (magic != b"BM" or _bmp_header(data)):
            return kind
    return _heif(data) if data[4:8] == b"ftyp" else None


def _bmp_header(data: bytes) -> bool:
    """'BM' is two letters any text may start with; a bitmap follows them with a DIB header of a known size."""
    return int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES


def _heif(data: bytes) -> str | None:
    """An image kind by the ftyp box's brands (major and compatible; AVIF before HEIC, both before the
    generic HEIF brands), or None for other ISO media (MP4, QuickTime, 3GP...)."""
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    brands = {data[i:i + 4] for i in range(8, size - 3, 4) if i != 12}
    for names, kind in HEIF_BRANDS:
        if brands & set(names.split()):
            return kind
    return None
