"""Tiny fine-tuning setups for tests of this and later stages (tracking, registry, flows).

``tiny_params`` shrinks the default params to a model that trains an iteration in well under a
second on a laptop CPU (ViT embed 64, depth 4, 128 px, FPN width 32) without touching the
stage's code paths: everything goes through ``params`` (``model.backbone: vit`` and
``model.cfg_options`` for the ViT dims).

    ds = make_tiny_dataset(tmp / "ds")                     # synthetic, validated (marker)
    params = tiny_params(load_params(), ds, tmp / "work")  # 1 epoch x 3 iterations
    result = finetune(params, validation_marker=ds.marker)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from components.common.params import apply_overrides

__all__ = ["TinyDataset", "TinyRun", "make_tiny_dataset", "tiny_params", "tiny_finetune",
           "shared_tiny_dataset", "shared_tiny_run", "TINY_OVERRIDES"]

TINY_OVERRIDES: dict[str, Any] = {
    "model.backbone": "vit",              # the paper's backbone, shrunk by cfg_options below
    "model.size": "tiny",
    "model.pretrain_img_size": 64,        # 4x4-token windows, global blocks at 1 and 3
    "model.fpn_channels": 32,
    "model.roi_samples": 64,
    "model.cfg_options": {"model.backbone.embed_dim": 64, "model.backbone.depth": 4,
                          "model.backbone.num_heads": 2,
                          "model.train_cfg.rpn_proposal.nms_pre": 200,
                          "model.train_cfg.rpn_proposal.max_per_img": 100,
                          "model.test_cfg.rpn.nms_pre": 200,
                          "model.test_cfg.rpn.max_per_img": 100},
    "finetune.img_size": 128,
    "finetune.lr": 0.0005,                # the ViT's lr (params.yaml's 0.002 is the CNN's)
    "finetune.batch_size": 2,
    "finetune.epochs": 1,
    "finetune.warmup_epochs": 0.5,
    "finetune.val_interval": 1,
    "finetune.num_workers": 0,
}


@dataclass(frozen=True)
class TinyDataset:
    root: Path
    marker: Path          # validated.json written by the real validation gate
    content_hash: str


def make_tiny_dataset(root: str | Path, *, image_size: int = 128, seed: int = 0,
                      validate: bool = True) -> TinyDataset:
    """Synthetic set (6 train / 3 val / 3 test images) + the validation gate's marker."""
    from components.data.synthetic import generate, tiny_config

    root = Path(root)
    manifest = generate(root, tiny_config(image_size=image_size), seed=seed)
    marker = root.parent / f"{root.name}-validation" / "validated.json"
    if validate:
        from components.validation import validate_dataset

        result = validate_dataset(root, {"decode_images": True}, marker.parent, progress=False)
        if not result.success:
            raise RuntimeError(f"tiny dataset failed validation: {result.failures[:3]}")
    return TinyDataset(root, marker, manifest["content_hash"])


def tiny_params(params: Mapping[str, Any], data_root: str | Path, work_dir: str | Path,
                **overrides: Any) -> dict:
    """``params`` with the tiny model/schedule, ``data.out``, ``finetune.work_dir`` and
    ``evaluate.out`` (``<work_dir>/../evaluate``) set.

    ``overrides`` use dotted names with ``__`` for dots: ``finetune__epochs=2``.
    """
    changes = dict(TINY_OVERRIDES)
    changes["model.cfg_options"] = copy.deepcopy(TINY_OVERRIDES["model.cfg_options"])
    changes.update({"data.out": str(data_root), "finetune.work_dir": str(work_dir),
                    "evaluate.out": str(Path(work_dir).parent / "evaluate")})
    changes.update({k.replace("__", "."): v for k, v in overrides.items()})
    return apply_overrides(dict(params), changes)


@dataclass(frozen=True)
class TinyRun:
    dataset: TinyDataset
    params: dict
    result: Any           # components.train.finetune.FinetuneResult


def tiny_finetune(tmp_dir: str | Path, dataset: TinyDataset | None = None,
                  **overrides: Any) -> TinyRun:
    """Fine-tune the tiny model (one epoch of three iterations, with validation) on
    ``dataset`` (default: a new one in ``tmp_dir/ds``); ``final/`` is ``work/final`` under ``tmp_dir``."""
    from components.common.params import load_params
    from components.train.finetune import finetune

    tmp_dir = Path(tmp_dir)
    ds = dataset or make_tiny_dataset(tmp_dir / "ds")
    params = tiny_params(load_params(), ds.root, tmp_dir / "work", **overrides)
    return TinyRun(ds, params, finetune(params, validation_marker=ds.marker))


# One dataset / run per test session and base folder, whichever test folder asks first
# (pytest's session tmp root is the key), so tests/train and tests/evaluate train once.
_DATASETS: dict[Path, TinyDataset] = {}
_RUNS: dict[Path, TinyRun] = {}


def shared_tiny_dataset(base: str | Path) -> TinyDataset:
    key = Path(base).resolve()
    if key not in _DATASETS:
        _DATASETS[key] = make_tiny_dataset(key / "tiny-ds" / "ds")
    return _DATASETS[key]


def shared_tiny_run(base: str | Path) -> TinyRun:
    key = Path(base).resolve()
    if key not in _RUNS:
        _RUNS[key] = tiny_finetune(key / "tiny-run", dataset=shared_tiny_dataset(key))
    return _RUNS[key]
