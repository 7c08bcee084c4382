"""Fixtures of the curation tests (helpers: curation_helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from curation_helpers import make_dataset, scene


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Three splits, one distinct image per pair, captions naming shapes."""
    images = {f"{s}/{i}.png": scene(100 * k + i) for k, s in enumerate(("train", "val", "test"))
              for i in range(3)}
    captions = ["A picture of two red stars and a circle.", "An image showing a blue square.",
                "There are three shapes: a triangle and two circles."]
    pairs = {s: [(f"{s}/{i}.png", captions[i]) for i in range(3)] for s in ("train", "val", "test")}
    return make_dataset(tmp_path / "ds", pairs, images)
