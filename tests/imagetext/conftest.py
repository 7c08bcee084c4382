"""Fixtures of the image-text tests: a tiny dataset, its curated pairs, one tiny pretraining."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from testkit.threads import pinned_threads


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: thread start-up costs more than it saves on the shared 2-core machine."""
    with pinned_threads(torch.get_num_threads, torch.set_num_threads):
        yield


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imagetext_helpers import make_dataset

    return make_dataset(tmp_path_factory.mktemp("imagetext-data") / "ds")


@pytest.fixture(scope="session")
def holdout(dataset: Path) -> list[str]:
    from imagetext_helpers import pick_holdout

    return pick_holdout(dataset)


@pytest.fixture(scope="session")
def curated(dataset: Path, holdout: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imagetext_helpers import write_curated

    return write_curated(dataset, tmp_path_factory.mktemp("imagetext-curated") / "curated", holdout)


@pytest.fixture(scope="session")
def tiny_cfg(dataset: Path, curated: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny UniCL config (32-d 2-block ViT at 64 px, 1-layer 32-d text tower)."""
    import components.pretrain.unicl  # noqa: F401  (registers the method)
    from imagetext_helpers import TINY_ARCH, TINY_TEXT

    from components.pretrain.config import SHARED_DEFAULTS, PretrainConfig
    from components.pretrain.registry import get_method

    def make(steps: int = 2, **options) -> PretrainConfig:
        opts = {k: v for k, v in get_method("unicl").defaults.items() if k not in SHARED_DEFAULTS}
        opts.update(TINY_TEXT, curated=str(curated), **options)
        return PretrainConfig(method="unicl", data_root=dataset,
                              out_dir=tmp_path_factory.mktemp("unicl-out") / "unicl",
                              img_size=64, arch=dict(TINY_ARCH), batch_size=8, max_steps=steps,
                              warmup_epochs=0, lr=1e-3, min_lr=1e-3, options=opts)

    return make
