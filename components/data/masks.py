"""COCO mask encodings checked and measured without decoding them (pure Python + numpy).

Why not pycocotools: its RLE decoder trusts the counts and writes past the mask when they do
not sum to height x width, so a corrupt record must be caught before anything decodes it. Used
by the validation gate (rules), the scoring of ground truth (:mod:`.scoring`) and tests.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rle_counts", "rle_problem", "rle_foreground", "polygon_area"]


def rle_counts(counts: str) -> list[int] | None:
    """Run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString`` format: 5 bits
    per char + 48, a continuation bit, sign-extended, counts after the second differential),
    without pycocotools: its decoder writes past the mask when the counts are corrupt, so they
    are checked here first. None if the string is malformed."""
    out: list[int] = []
    i, n = 0, len(counts)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            if i >= n:
                return None
            c = ord(counts[i]) - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def rle_problem(counts: Any, height: int, width: int) -> str | None:
    """Why an RLE's ``counts`` cannot be a ``height x width`` mask (None: they can)."""
    runs = rle_counts(counts) if isinstance(counts, str) else list(counts)
    if runs is None:
        return "RLE 'counts' string is not valid compressed RLE"
    if any(r < 0 for r in runs):
        return "RLE 'counts' has a negative run length"
    if sum(runs) != height * width:
        return (f"RLE 'counts' sum to {sum(runs)} pixels but size [{height}, {width}] "
                f"holds {height * width}")
    return None


def rle_foreground(counts: Any) -> int:
    """Foreground pixels of a valid RLE (odd runs: COCO RLE starts with background)."""
    runs = rle_counts(counts) if isinstance(counts, str) else list(counts)
    return sum(runs[1::2])


def polygon_area(rings: list) -> float:
    """Total shoelace area of polygon rings (``[x0, y0, x1, y1, ...]`` each)."""
    total = 0.0
    for ring in rings:
        if len(ring) < 6 or len(ring) % 2:
            continue  # reported by polygon_rings_ok
        pts = np.asarray(ring, dtype=float).reshape(-1, 2)
        x, y = pts[:, 0], pts[:, 1]
        total += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return total
