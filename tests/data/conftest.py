"""Shared tiny synthetic datasets for the data tests (rendered once per session, < 1 s)."""
from __future__ import annotations

from pathlib import Path

import pytest

from components.data.synthetic import generate, tiny_config

# 128 px so small objects exist; crowd on half the images so every split has crowd regions.
TINY = tiny_config(image_size=128, crowd_fraction=0.5,
                   num_images={"train": 8, "val": 4, "test": 4, "unlabeled": 3})


@pytest.fixture(scope="session")
def tiny_cfg() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset folder (seed 0). Treat as read-only."""
    out = tmp_path_factory.mktemp("synthetic") / "ds"
    generate(out, TINY, seed=0)
    return out
