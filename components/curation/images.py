"""Image facts for curation: sha256, header size, perceptual hash, and a near-duplicate index.

pHash (the DCT hash of Zauner 2010, as in the ``imagehash`` package): grayscale, 32x32,
2-D DCT, the 8x8 lowest frequencies compared with their median -> 64 bits. Re-encoding,
resizing and mild colour changes move a few bits; different images differ in ~half.

:class:`NearDupIndex` finds a stored hash within Hamming distance ``t`` without comparing
against all of them (multi-index hashing): split the 64 bits into ``t + 1`` disjoint chunks;
two hashes within distance ``t`` agree exactly on at least one chunk (pigeonhole), so only
hashes sharing a chunk value are compared. Exact, not approximate.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

__all__ = ["ImageInfo", "image_info", "phash", "hamming", "NearDupIndex"]

HASH_BITS = 64


@dataclass(frozen=True)
class ImageInfo:
    """``width``/``height`` as stored (header, no EXIF rotation); ``phash`` 64-bit int."""
    sha256: str
    width: int
    height: int
    phash: int


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash of ``img`` (any mode); bit 63 = lowest frequency (DC)."""
    img.draft("L", (128, 128))          # JPEG: decode at reduced scale, still >= 128 px
    gray = img.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    low = cv2.dct(np.asarray(gray, dtype=np.float32))[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def image_info(path: str | Path) -> ImageInfo:
    """sha256 of the file's bytes, its header size and pHash, from one read of the file.

    Raises ``OSError`` for a missing file and ``PIL.UnidentifiedImageError`` (an ``OSError``)
    or another decoder error for a file that is not a readable image.
    """
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        return ImageInfo(hashlib.sha256(data).hexdigest(), int(width), int(height), phash(img))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class NearDupIndex:
    """Stored 64-bit hashes, queried for the closest one within ``max_distance`` bits.

    Args:
        max_distance: the largest Hamming distance that counts as a match (0-63).
    """

    def __init__(self, max_distance: int) -> None:
        if not 0 <= max_distance < HASH_BITS:
            raise ValueError(f"max_distance must be in [0, {HASH_BITS - 1}], got {max_distance}")
        self.max_distance = max_distance
        n = max_distance + 1
        edges = np.linspace(0, HASH_BITS, n + 1).round().astype(int)
        self._chunks = [(int(lo), (1 << int(hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]
        self._buckets: list[dict[int, list[int]]] = [{} for _ in self._chunks]
        self._hashes: list[int] = []
        self._keys: list[object] = []

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, h: int, key: object) -> None:
        """Store hash ``h`` under ``key`` (returned by :meth:`query`)."""
        i = len(self._hashes)
        self._hashes.append(h)
        self._keys.append(key)
        for (shift, mask), bucket in zip(self._chunks, self._buckets):
            bucket.setdefault((h >> shift) & mask, []).append(i)

    def query(self, h: int) -> tuple[object, int] | None:
        """``(key, distance)`` of the closest stored hash within ``max_distance`` (ties: the
        first stored), or None."""
        candidates: set[int] = set()
        for (shift, mask), bucket in zip(self._chunks, self._buckets):
            candidates.update(bucket.get((h >> shift) & mask, ()))
        best: tuple[int, int] | None = None
        for i in candidates:
            d = (h ^ self._hashes[i]).bit_count()
            if d <= self.max_distance and (best is None or (d, i) < best):
                best = (d, i)
        return None if best is None else (self._keys[best[1]], best[0])
