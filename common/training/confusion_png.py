"""The confusion matrix as a PNG heatmap (`GET /models/<name>/confusion.png`), drawn with Pillow.

Rows are the true classes, columns the predicted ones. Long labels do not fit
under a column, so classes are numbered: each row reads `3  golden retriever`
and the columns carry the same numbers. A cell's shade is its share of the
row (the class's recall on the diagonal), so a small class is as visible as a
large one; the count is written in the cell when the cell is big enough to
read it. The whole grid is kept under about 1600 pixels a side, 200 classes
included.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GRID_PIXELS = 1600
MAX_CELL, MIN_CELL, MIN_COUNT_CELL = 48, 6, 20
MAX_LABEL_CHARS = 32
LOW, HIGH = np.array([247, 251, 255]), np.array([8, 48, 107])  # white to dark blue
INK, PAPER, RULE = (33, 37, 41), (255, 255, 255), (206, 212, 218)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def render(labels: Sequence[str], matrix: Sequence[Sequence[int]] | np.ndarray) -> bytes:
    """PNG bytes of the heatmap of a k x k count matrix (rows = true class)."""
    counts = np.asarray(matrix, dtype=np.int64)
    k = len(labels)
    if counts.shape != (k, k):
        raise ValueError(f"a {k}x{k} matrix is needed for {k} labels, got {counts.shape}")
    cell = max(MIN_CELL, min(MAX_CELL, GRID_PIXELS // max(k, 1)))
    font, small = _font(13), _font(max(8, min(12, cell // 2)))
    row_text = [f"{i + 1:>{len(str(k))}}  {_short(label)}" for i, label in enumerate(labels)]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 12 + max(int(measure.textlength(t, font=font)) for t in row_text) + 8 if k else 100
    top, pad = 64, 16
    width, height = left + k * cell + pad, top + k * cell + pad + 22
    image = Image.new("RGB", (max(width, 360), height), PAPER)
    draw = ImageDraw.Draw(image)
    draw.text((12, 8), "Confusion matrix (test split)", fill=INK, font=_font(15))
    draw.text((12, 30), "rows: true class, columns: predicted class (same numbers)", fill=INK, font=font)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    every = max(1, int(np.ceil(18 / cell)))  # number every n-th column when cells are narrow
    for r in range(k):
        y = top + r * cell
        if r % every == 0 or cell >= 14:
            draw.text((12, y + cell / 2), row_text[r] if cell >= 12 else str(r + 1), fill=INK, font=font,
                      anchor="lm")
        for c in range(k):
            x = left + c * cell
            colour = tuple(int(v) for v in LOW + (HIGH - LOW) * share[r, c])
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline=RULE if cell >= 12 else None)
            if cell >= MIN_COUNT_CELL and counts[r, c]:
                ink = PAPER if share[r, c] > 0.5 else INK
                draw.text((x + cell / 2, y + cell / 2), str(counts[r, c]), fill=ink, font=small, anchor="mm")
    for c in range(0, k, every):
        draw.text((left + c * cell + cell / 2, top - 4), str(c + 1), fill=INK, font=small, anchor="ms")
    draw.text((12, top + k * cell + 8), f"{int(counts.sum())} test images, {k} classes", fill=INK, font=font)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()
