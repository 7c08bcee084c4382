"""A tiny fine-tuned model to evaluate (one per session)."""
from __future__ import annotations

import pytest

from components.train.testing import tiny_finetune


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return tiny_finetune(tmp_path_factory.mktemp("eval-run"))
