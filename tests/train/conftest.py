"""Shared tiny fine-tuning run for tests/train (one per session: training is the slow part)."""
from __future__ import annotations

import pytest

from components.train.testing import make_tiny_dataset, tiny_finetune


@pytest.fixture(scope="session")
def tiny_ds(tmp_path_factory):
    """Validated 6/3/3-image synthetic set, 128 px."""
    return make_tiny_dataset(tmp_path_factory.mktemp("train-ds") / "ds")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny fine-tune (1 epoch x 3 iterations + validation)."""
    return tiny_finetune(tmp_path_factory.mktemp("train-run"))
