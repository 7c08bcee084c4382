"""The fine-tuning stage end to end on a tiny model: outputs, MLflow, gate, NaN guard, CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from components.common.env import PROJECT_ROOT
from components.common.params import load_params
from components.train.finetune import DatasetNotValidated, finetune
from components.train.hooks import NonFiniteLossError
from testkit.finetune import tiny_params


def _run(run_id):
    return mlflow.MlflowClient().get_run(run_id)


def test_final_outputs(tiny_run):
    final, meta = tiny_run.result.final, tiny_run.result.meta
    assert sorted(p.name for p in final.iterdir()) == [
        "config.py", "meta.json", "model.safetensors", "train_log.jsonl"]
    assert json.loads((final / "meta.json").read_text()) == meta
    assert meta["iterations"] == 3 and meta["epochs"] == 1  # 6 images / batch 2
    assert meta["classes"][0] == "circle" and len(meta["classes"]) == 8
    assert meta["data_content_hash"] == tiny_run.dataset.content_hash
    assert set(meta["final_losses"]) >= {"loss", "loss_rpn_cls", "loss_cls", "loss_mask"}
    state = load_file(str(final / "model.safetensors"))
    model_state = tiny_run.result.model.state_dict()
    assert state.keys() == model_state.keys()
    assert all(torch.equal(state[k], model_state[k]) for k in state)
    log = [json.loads(x) for x in (final / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    # val AP of the initial model (epoch 0, ValBeforeTrainHook), then after epoch 1
    assert [r["step"] for r in log if "coco/bbox_mAP" in r] == [0, 1]


def test_mlflow_run(tiny_run):
    run = _run(tiny_run.result.meta["finetune_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "finetune"
    assert run.data.params["finetune.img_size"] == "128"
    m = run.data.metrics
    for key in ("train/loss", "train/loss_rpn_cls", "train/loss_rpn_bbox", "train/loss_cls",
                "train/loss_bbox", "train/loss_mask", "train/lr", "val/bbox_mAP", "val/segm_mAP"):
        assert key in m, key
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    assert sorted(h.step for h in history) == [1, 2, 3]
    val = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val/bbox_mAP")
    assert sorted(h.step for h in val) == [0, 1]  # before fine-tuning, after epoch 1
    lrs = [h.value for h in sorted(mlflow.MlflowClient().get_metric_history(
        run.info.run_id, "train/lr"), key=lambda h: h.step)]
    assert lrs[0] < lrs[1]  # warm-up iteration 0 starts at 1e-3 x lr
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "config")}
    assert "config/resolved_config.py" in arts


def test_build_detector_reproduces_trained_model(tiny_run):
    from mmdet.apis import inference_detector

    from components.train.build import build_detector

    final = tiny_run.result.final
    built = build_detector(str(final / "config.py"))
    assert not built.training and built.dataset_meta["classes"] == tuple(
        tiny_run.result.meta["classes"])
    built.load_state_dict(load_file(str(final / "model.safetensors")))
    img = str(next((tiny_run.dataset.root / "images" / "test").iterdir()))
    a = inference_detector(tiny_run.result.model, img).pred_instances
    b = inference_detector(built, img).pred_instances
    assert len(a) == len(b)
    assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)


def test_refuses_unvalidated_data(tiny_ds, tmp_path):
    params = tiny_params(load_params(), tiny_ds.root, tmp_path / "work")
    with pytest.raises(DatasetNotValidated, match="dataset not validated.*components.validation"):
        finetune(params, validation_marker=tmp_path / "missing.json")
    stale = tmp_path / "validated.json"
    stale.write_text(json.dumps({"content_hash": "0" * 64}))
    with pytest.raises(DatasetNotValidated, match="content_hash"):
        finetune(params, validation_marker=stale)
    assert not (tmp_path / "work" / "final").exists()


@pytest.mark.filterwarnings("ignore:Detected call of `scheduler.step\\(\\)`")  # skipped steps
def test_nan_guard_fails_the_stage(tiny_ds, tmp_path):
    # a loss weight of NaN makes every loss non-finite from the first iteration on
    params = tiny_params(load_params(), tiny_ds.root, tmp_path / "work", finetune__nan_patience=2)
    params["model"]["cfg_options"]["model.roi_head.mask_head.loss_mask.loss_weight"] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"loss became NaN at iter 2; .*lower finetune.lr"):
        finetune(params, validation_marker=tiny_ds.marker)
    assert not (tmp_path / "work" / "final").exists()
    failed = mlflow.search_runs(experiment_names=["vitdet-pipeline"],
                                filter_string="tags.stage = 'finetune' and "
                                              "attributes.status = 'FAILED'", output_format="list")
    assert any("loss became NaN" in r.data.tags.get("error", "") for r in failed)
    state = json.loads((tmp_path / "work" / "run_state.json").read_text())
    assert state["status"] == "failed"


def test_cli_help_and_exit_code(tiny_ds, tmp_path):
    py = sys.executable
    out = subprocess.run([py, "-m", "components.train", "--help"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--work-dir" in out.stdout and "--set" in out.stdout
    out = subprocess.run([py, "-m", "components.train", "--set", f"data.out={tiny_ds.root}",
                          "--work-dir", str(tmp_path / "w"), "--validated",
                          str(tmp_path / "none.json")],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "dataset not validated" in out.stderr
