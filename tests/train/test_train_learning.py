"""The default detector learns: a short run of the default recipe on the default scene preset
scores clearly above the untrained model, through the real prepare -> validate -> fine-tune ->
evaluate code (not a timing test: the full-budget figure is benchmarks/default_run.py's).

Default params with a smaller dataset (600 train images of the ``easy`` preset) and one epoch:
150 iterations, ~90 s on 2 cores. Measured once: test bbox AP50 0.10 (untrained: 0.00).
"""
from __future__ import annotations

import json

import pytest

from components.common.params import apply_overrides, load_params

pytestmark = pytest.mark.slow


def test_default_recipe_learns_the_default_preset(tmp_path):
    from components.data.synthetic import generate
    from components.evaluate.stage import evaluate
    from components.train.finetune import finetune
    from components.validation import validate_dataset

    params = load_params()
    assert params["data"]["synthetic"]["preset"] == "easy"
    cfg = dict(params["data"]["synthetic"], num_images={"train": 600, "val": 30, "test": 60,
                                                        "unlabeled": 0})
    generate(tmp_path / "ds", cfg, seed=0)
    marker = tmp_path / "validation" / "validated.json"
    assert validate_dataset(tmp_path / "ds", {"decode_images": False}, marker.parent,
                            progress=False).success
    params = apply_overrides(params, {
        "data.out": str(tmp_path / "ds"), "finetune.work_dir": str(tmp_path / "work"),
        "evaluate.out": str(tmp_path / "eval"), "finetune.epochs": 1,
        "finetune.val_interval": 1, "finetune.val_before_train": True})
    result = finetune(params, validation_marker=marker)
    assert result.meta["iterations"] == 150
    rows = [json.loads(x) for x in (result.final / "train_log.jsonl").read_text().splitlines()]
    # epoch 0 = the untrained model (mmdet logs no AP at all when it detects nothing)
    before = next((r.get("coco/bbox_mAP_50", 0.0) for r in rows if r.get("step") == 0
                   and "loss" not in r), 0.0)
    metrics = evaluate(params)
    assert before < 0.01                               # the untrained model finds nothing
    assert metrics["bbox_mAP_50"] >= 0.05, metrics     # 150 iterations: measured 0.10
    assert metrics["bbox_mAP_50"] > before + 0.04
