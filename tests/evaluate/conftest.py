"""The tiny fine-tuned model to evaluate (shared with tests/train: trained once per session)."""
from __future__ import annotations

import pytest

from testkit.finetune import shared_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return shared_tiny_run(tmp_path_factory.getbasetemp())
