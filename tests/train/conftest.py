"""Tiny dataset + fine-tuning run shared with tests/evaluate (trained once per session)."""
from __future__ import annotations

import pytest

from testkit.finetune import shared_tiny_dataset, shared_tiny_run


@pytest.fixture(scope="session")
def tiny_ds(tmp_path_factory):
    """Validated 6/3/3-image synthetic set, 128 px."""
    return shared_tiny_dataset(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny fine-tune (1 epoch x 3 iterations + validation)."""
    return shared_tiny_run(tmp_path_factory.getbasetemp())
