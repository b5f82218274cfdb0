"""Large and hostile images cost bounded memory: refused before decoding when their bytes cannot hold what their
header claims, decoded without a second full-size copy, and taking turns under a per-process pixel budget.

Before: a 115 KB 6300x6300 PNG held 150-300 MB while decoded (its RGB copies), eight at once took a server to
1.2-1.5 GB, and eight 138-byte TIFFs claiming 6000x6000 reached 902 MB before their 422.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from common.core import errors
from common.core.config import settings
from common.media import decodegate, images
from infra import photos
from tests import images as odd

SIDE = 6300  # 39.7 million pixels: just under MAX_IMAGE_PIXELS
PEAK_RSS_MB = 400  # 8 huge PNGs and 8 hostile TIFFs decoded at once (measured 240 MB; before: 1,070 MB)


def tiff(width: int, height: int, stored: int, compression: int = 1, tiles: bool = False) -> bytes:
    """A TIFF header claiming width x height greyscale pixels, in one strip (or tile) of `stored` bytes."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, compression), (262, 3, 1), (277, 3, 1)]
    entries += [(322, 3, 256), (323, 3, 256), (324, 4, 8), (325, 4, stored)] if tiles else \
        [(273, 4, 8), (278, 4, height), (279, 4, stored)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
        for tag, kind, value in sorted(entries)) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8 + 16) + b"\0" * 16 + ifd


HOSTILE = {
    "tiff-strip-past-the-end": tiff(6000, 6000, 36_000_000),
    "tiff-deflate-10-bytes": tiff(6000, 6000, 10, compression=8),
    "tiff-lzw-10-bytes": tiff(6000, 6000, 10, compression=5),
    "tiff-tile-deflate": tiff(6000, 6000, 100, compression=8, tiles=True),
    "png-claiming-6000x6000": odd.png_bomb(6000),
}


def huge(mode: str) -> bytes:
    """A legal SIDE x SIDE PNG of a few hundred KB (flat, with a little detail)."""
    img = Image.new("RGB", (SIDE, SIDE), (120, 90, 60))
    img.paste(odd.coffee(), (SIDE // 2, SIDE // 2))
    return odd.encode(img.convert(mode), "PNG")


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_file_too_small_for_its_claimed_size_is_refused_before_decoding(name: str) -> None:
    with pytest.raises(errors.Unprocessable) as refused:
        images.prepare(HOSTILE[name])
    assert refused.value.code == "undecodable_image" and "claims 6000x6000" in refused.value.message


@pytest.mark.fast
@pytest.mark.parametrize("compression", ["raw", "packbits", "tiff_lzw", "tiff_deflate"])
@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_complete_flat_tiffs_pass_the_check(compression: str, mode: str) -> None:
    """The flattest legal files (the best ratio each method reaches) are not taken for truncated ones."""
    data = odd.encode(Image.new(mode, (1500, 1000), 0 if mode == "1" else 200), "TIFF", compression=compression)
    assert images.prepare(data).shape == (224, 224, 3)


@pytest.mark.fast
def test_the_flattest_png_passes_the_check() -> None:
    data = odd.encode(Image.new("L", (SIDE, SIDE), 7), "PNG", optimize=True)
    assert images.prepare(data).shape == (224, 224, 3)


@pytest.mark.fast
def test_large_decodes_take_turns_and_photos_never_wait() -> None:
    """A photo passes while the pixel budget is all held; a large image waits for its turn; eight large images
    sent at once never decode side by side beyond the budget."""
    gate = decodegate.gate(settings().models.max_image_pixels)
    photo, large = odd.jpeg(), huge("L")
    done: list[str] = []
    with gate.decoding(gate.budget):  # the whole budget held, as a huge decode would
        waiting = threading.Thread(target=lambda: done.append(str(images.prepare(large).shape)))
        waiting.start()
        photo_thread = threading.Thread(target=lambda: done.append("photo" if images.prepare(photo).size else ""))
        photo_thread.start()
        photo_thread.join(timeout=60)
        assert done == ["photo"]  # decoded while the large one waits
        for _ in range(600):  # observable state, not a sleep: the large image is queued at the gate
            if gate.waiting == 1:
                break
            threading.Event().wait(0.05)
        assert gate.waiting == 1 and done == ["photo"]
    waiting.join(timeout=120)
    assert done == ["photo", "(224, 224, 3)"]
    gate.peak_running = gate.peak_held = 0
    threads = [threading.Thread(target=images.prepare, args=(large,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert gate.peak_running == 1 and gate.peak_held <= gate.budget


DECODE_ALL = """
import sys, threading
from pathlib import Path
from common.core import errors
from common.media import images
files = sorted(Path(sys.argv[1]).iterdir())
def one(path):
    try:
        images.prepare(path.read_bytes())
    except errors.AppError:
        pass
threads = [threading.Thread(target=one, args=(path,)) for path in files]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def test_peak_memory_of_eight_huge_pngs_and_eight_hostile_tiffs_at_once(tmp_path: Path) -> None:
    """In a process of its own, every file decoded at the same moment on its own thread, as a server's threads
    would: the peak is one large decode's worth over the interpreter, not eight."""
    for i, mode in enumerate(["L", "RGB", "RGBA", "P"] * 2):
        (tmp_path / f"huge-{i}.png").write_bytes(huge(mode))
    hostile = list(HOSTILE.values())
    for i in range(8):
        (tmp_path / f"hostile-{i}.tif").write_bytes(hostile[i % len(hostile)])
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", DECODE_ALL, str(tmp_path)], capture_output=True, text=True,
                         timeout=600, cwd=root)
    assert run.returncode == 0, run.stderr
    peak_mb = int(run.stdout.strip()) / 1024
    print(f"peak RSS {peak_mb:.0f} MB")
    assert peak_mb < PEAK_RSS_MB, peak_mb


@pytest.mark.fast
def test_a_twelve_megapixel_photo_never_waits() -> None:
    """A phone photo decodes at a reduced scale (JPEG draft): under the large size, it passes the gate."""
    gate = decodegate.gate(settings().models.max_image_pixels)
    img = Image.open(io.BytesIO(photos.data("grace_hopper.jpg"))).convert("RGB").resize((4000, 3000))
    passed = gate.passed
    with gate.decoding(gate.budget):  # the budget all held: a photo that waited would never finish here
        assert images.prepare(odd.jpeg(img)).shape == (224, 224, 3)
    assert gate.passed == passed + 1
