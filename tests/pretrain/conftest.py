"""Shared fixtures for the pretraining tests: a tiny synthetic dataset and a trained tokenizer."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from testkit.threads import pinned_threads

from components.data.synthetic import generate, tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: thread start-up costs more than it saves on the shared 2-core machine."""
    with pinned_threads(torch.get_num_threads, torch.set_num_threads):
        yield


@pytest.fixture(scope="session")
def pretrain_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 px synthetic dataset: 8 labelled train images, 8 unlabeled. Treat as read-only."""
    out = tmp_path_factory.mktemp("pretrain-data") / "ds"
    generate(out, tiny_config(num_images={"train": 8, "val": 0, "test": 0, "unlabeled": 8}), seed=0)
    return out


@pytest.fixture(scope="session")
def tokenizer_file(pretrain_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer trained for 2 steps by the real stage function (16 codes)."""
    from pretrain_helpers import tiny_cfg

    from components.pretrain.tokenizer import TOKENIZER_DEFAULTS, train_tokenizer

    out = tmp_path_factory.mktemp("pretrained")
    train_tokenizer(tiny_cfg("tokenizer", pretrain_ds, out, defaults=TOKENIZER_DEFAULTS),
                    progress=False)
    return out / "tokenizer" / "tokenizer.safetensors"
