"""Shared fixtures for the BING tests: a tiny synthetic dataset, its params, a trained model."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from proposals_helpers import TINY, make_params

from components.data.synthetic import generate
from testkit.threads import pinned_threads


@pytest.fixture(autouse=True)
def _one_thread():
    """BING on 128 px images: OpenCV's thread start-up costs more than it saves here."""
    with pinned_threads(cv2.getNumThreads, cv2.setNumThreads):
        yield


@pytest.fixture(scope="session")
def bing_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset folder (seed 0). Treat as read-only (copy it to modify images)."""
    out = tmp_path_factory.mktemp("bing-data") / "ds"
    generate(out, TINY, seed=0, workers=1)
    return out


@pytest.fixture(scope="session")
def trained(bing_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """(params, meta) of one real ``train_stage`` run on :func:`bing_ds`. Read-only."""
    from components.proposals.stage import train_stage

    out = tmp_path_factory.mktemp("bing-trained")
    params = make_params(bing_ds, out)
    return params, train_stage(params, progress=False)


@pytest.fixture
def ds_copy(bing_ds: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`bing_ds` whose files a test may change."""
    dst = tmp_path / "ds"
    shutil.copytree(bing_ds, dst)
    return dst
