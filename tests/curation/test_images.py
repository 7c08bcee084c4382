"""pHash and the near-duplicate index (components/curation/images.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from components.curation.images import NearDupIndex, hamming, image_info, phash

from curation_helpers import save, scene


def _hash(img: np.ndarray) -> int:
    return phash(Image.fromarray(img))


def test_reencoded_and_resized_copies_are_near(tmp_path):
    original = scene(1, size=128)
    h = _hash(original)
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, "JPEG", quality=70)
    jpeg = phash(Image.open(io.BytesIO(buf.getvalue())))
    smaller = phash(Image.fromarray(original).resize((115, 115), Image.Resampling.BILINEAR))
    assert hamming(h, jpeg) <= 4
    assert hamming(h, smaller) <= 4
    others = [hamming(h, _hash(scene(seed, size=128))) for seed in range(2, 12)]
    assert min(others) > 10, others


def test_image_info_reads_size_hash_and_phash(tmp_path):
    path = save(tmp_path / "a.png", scene(3, size=64)[:, :48])
    info = image_info(path)
    assert (info.width, info.height) == (48, 64)
    assert len(info.sha256) == 64 and 0 <= info.phash < 2 ** 64
    with pytest.raises(FileNotFoundError):
        image_info(tmp_path / "missing.png")


@pytest.mark.parametrize("t", [0, 2, 4, 9])
def test_index_finds_exactly_what_brute_force_finds(t):
    rng = np.random.default_rng(t)
    base = [int(x) for x in rng.integers(0, 2 ** 63, 300, dtype=np.int64)]
    stored = base[:200]
    # queries: stored hashes with 0..t+2 bits flipped, plus unrelated ones
    queries = []
    for h in stored[:100]:
        flips = rng.choice(64, size=int(rng.integers(0, t + 3)), replace=False)
        queries.append(h ^ sum(1 << int(b) for b in flips))
    queries += base[200:]
    index = NearDupIndex(t)
    for i, h in enumerate(stored):
        index.add(h, i)
    for q in queries:
        dists = np.array([hamming(q, h) for h in stored])
        best = int(np.argmin(dists))
        expected = (best, int(dists[best])) if dists[best] <= t else None
        assert index.query(q) == expected


def test_index_rejects_out_of_range_distance():
    with pytest.raises(ValueError):
        NearDupIndex(64)
