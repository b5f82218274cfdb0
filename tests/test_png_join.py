"""A PNG read as if its IDAT chunks were one (common/media/pngjoin.py): the same pixels, a few decoder calls
instead of one per chunk, and any file that is not plainly a PNG read exactly as it came."""

from __future__ import annotations

import io
import math
import random
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from common.core import errors
from common.media import images, pngjoin
from infra import photos

pytestmark = pytest.mark.fast


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, each CRC checked (the joined image data's is left zero)."""
    out, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        assert int.from_bytes(crc, "big") == zlib.crc32(kind + payload) or (kind, crc) == (b"IDAT", pngjoin.NO_CRC)
        out.append((kind, payload))
        pos += 12 + length
    return out


def chunk(kind: bytes, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def small_chunks(img: Image.Image, every: int, **params: Any) -> bytes:
    """`img` as a PNG whose image data is cut into IDAT chunks of `every` bytes, as libpng writes (8 KiB)."""
    out = io.BytesIO()
    img.save(out, "PNG", **params)
    parts = chunks(out.getvalue())
    stream = b"".join(payload for kind, payload in parts if kind == b"IDAT")
    before = [chunk(k, p) for k, p in parts[:next(i for i, (k, _) in enumerate(parts) if k == b"IDAT")]]
    cut = [chunk(b"IDAT", stream[i:i + every]) for i in range(0, len(stream), every)]
    return pngjoin.SIGNATURE + b"".join(before) + b"".join(cut) + chunk(b"IEND", b"")


def joined(data: bytes) -> bytes:
    return pngjoin.reader(data).read()


def pixels(data: bytes) -> np.ndarray:
    img = Image.open(pngjoin.reader(data))
    img.load()
    return np.asarray(img)


def plain_pixels(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "camera.png"])
def test_a_photos_image_data_becomes_one_chunk_with_the_same_pixels(name: str) -> None:
    data = photos.data(name)
    assert [kind for kind, _ in chunks(data)].count(b"IDAT") > 10  # as libpng wrote it: 8 KiB chunks
    assert [kind for kind, _ in chunks(joined(data))].count(b"IDAT") == 1
    assert b"".join(p for k, p in chunks(joined(data)) if k == b"IDAT") == \
        b"".join(p for k, p in chunks(data) if k == b"IDAT")
    assert np.array_equal(pixels(data), plain_pixels(data))


@pytest.mark.parametrize("mode,params", [("RGB", {"optimize": False}), ("RGB", {"interlace": 1}),
                                          ("I;16", {}), ("P", {}), ("RGBA", {})])
def test_modes_and_interlacing_decode_the_same(mode: str, params: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    base = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), "RGB")
    img = base.convert("RGBA") if mode == "RGBA" else base.quantize() if mode == "P" else \
        base.convert("I;16") if mode == "I;16" else base
    data = small_chunks(img, 1000, **params)
    assert np.array_equal(pixels(data), plain_pixels(data))
    crop = images.prepare(data)
    monkeypatch.setattr(pngjoin, "reader", io.BytesIO)  # chunk by chunk, as Pillow reads a PNG by itself
    assert np.array_equal(crop, images.prepare(data))


def test_the_decoder_is_called_once_a_block_not_once_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call releases the GIL and takes it back, which beside a busy thread waits up to 5 ms."""
    calls = []
    zip_decoder = Image.core.zip_decoder

    class Counted:
        def __init__(self, decoder: Any) -> None:
            self.decoder = decoder

        def __getattr__(self, name: str) -> Any:
            return getattr(self.decoder, name)

        def decode(self, data: bytes) -> Any:
            calls.append(len(data))
            return self.decoder.decode(data)

    monkeypatch.setattr(Image.core, "zip_decoder", lambda *a: Counted(zip_decoder(*a)))
    data = photos.data("astronaut.png")
    images.prepare(data)
    image_data = sum(len(p) for k, p in chunks(data) if k == b"IDAT")
    assert len(calls) == math.ceil(image_data / images.DECODE_BLOCK) < 10  # 97 chunks


def test_anything_unexpected_is_left_as_it_came() -> None:
    data = small_chunks(Image.new("RGB", (64, 64), (1, 2, 3)), 50)
    idat = data.index(b"IDAT")
    text_first = data[:idat - 4] + chunk(b"tEXt", b"a\x00b") + data[idat - 4:]
    runs = data.replace(chunk(b"IEND", b""),  # image data in two runs
                        chunk(b"tEXt", b"x\x00y") + chunk(b"IDAT", b"") + chunk(b"IEND", b""))
    many = pngjoin.SIGNATURE + chunk(b"IHDR", data[16:29]) + chunk(b"IDAT", b"") * (pngjoin.MAX_CHUNKS + 1)
    single = io.BytesIO()
    Image.new("RGB", (8, 8)).save(single, "PNG")
    for same in (b"", b"GIF89a", data[:idat + 20], data[:-5], runs, many, single.getvalue(),
                 pngjoin.SIGNATURE + b"\xff\xff\xff\xffIDAT"):
        file = pngjoin.reader(same)
        assert isinstance(file, io.BytesIO) and file.getvalue() is same
    assert [k for k, _ in chunks(joined(text_first))].count(b"IDAT") == 1  # text before the data: fine


def test_the_pieces_read_as_one_file() -> None:
    """Any read, after any seek, returns what the joined bytes hold there."""
    data = photos.data("camera.png")
    whole, rng = joined(data), random.Random(3)
    file = pngjoin.reader(data)
    assert isinstance(file, pngjoin.Pieces) and file.seek(0, io.SEEK_END) == len(whole)
    for _ in range(500):
        at, size = rng.randrange(len(whole) + 10), rng.choice([0, 1, 7, 8192, 8204, 100_000, -1])
        file.seek(at)
        assert file.read(size) == (whole[at:] if size < 0 else whole[at:at + size]) and file.tell() >= at
    assert file.seek(-4, io.SEEK_END) == len(whole) - 4 and file.read() == whole[-4:] and file.read(5) == b""
    assert file.seek(2, io.SEEK_SET) == 2 and file.seek(3, io.SEEK_CUR) == 5 and file.read(3) == whole[5:8]


def test_a_truncated_or_hostile_png_is_still_refused_with_a_422() -> None:
    data = photos.data("astronaut.png")
    for bad in (data[:len(data) // 2], data[:200] + b"\x00" * 5000 + data[5200:]):
        with pytest.raises(errors.Unprocessable):
            images.prepare(bad)


def test_pngs_written_by_pillow_itself_decode_as_before() -> None:
    """Pillow writes an IDAT per 64 KiB block: joined too, the same pixels."""
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (600, 600, 3), dtype=np.uint8), "RGB")
    out = io.BytesIO()
    img.save(out, "PNG")
    assert np.array_equal(pixels(out.getvalue()), np.asarray(img))


def test_mangled_pngs_are_classified_or_refused_with_a_4xx_never_anything_else() -> None:
    """Bytes flipped, cut or inserted anywhere in a PNG of many IDAT chunks: a crop or a 4xx, nothing else."""
    rng = random.Random(20261205)
    data = small_chunks(Image.fromarray(np.random.default_rng(5).integers(0, 255, (48, 64, 3), dtype=np.uint8)), 300)
    outcomes = {"crop": 0, "refused": 0}
    for _ in range(400):
        mangled = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mangled))
            what = rng.random()
            if what < 0.5:
                mangled[at] = rng.randrange(256)
            elif what < 0.7:
                del mangled[at:at + rng.randint(1, 40)]
            elif what < 0.9:
                mangled[at:at] = rng.randbytes(rng.randint(1, 12))
            else:
                mangled[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"IDAT", b"IEND"])
        try:
            crop = images.prepare(bytes(mangled))
        except errors.BAD_IMAGE:
            outcomes["refused"] += 1
        else:
            assert crop.shape == (224, 224, 3)
            outcomes["crop"] += 1
    assert outcomes["crop"] and outcomes["refused"]  # both happen: the test reaches past the header
