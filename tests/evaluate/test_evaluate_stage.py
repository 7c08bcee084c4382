"""The evaluation stage on a tiny fine-tuned model: metrics.json, plots, MLflow, failures."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from components.common.env import PROJECT_ROOT
from components.evaluate.stage import METRIC_KEYS, evaluate

EXPECTED_KEYS = {
    "bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
    "segm_mAP", "segm_mAP_50", "segm_mAP_75", "segm_mAP_s", "segm_mAP_m", "segm_mAP_l",
    "split", "num_images", "data_hash", "content_hash", "model_config", "model_weights",
    "finetune_run_id", "evaluate_run_id", "eval_seconds",
}


@pytest.fixture(scope="module")
def evaluated(tiny_run):
    metrics = evaluate(tiny_run.params)
    return tiny_run, metrics


def test_metrics_json(evaluated):
    """evaluation.json: the full record; metrics.json: the AP columns dvc metrics show prints."""
    run, metrics = evaluated
    out = Path(run.params["evaluate"]["out"])  # absolute (tiny_params)
    on_disk = json.loads((out / "evaluation.json").read_text())
    assert set(on_disk) == EXPECTED_KEYS and on_disk == metrics
    columns = json.loads((out / "metrics.json").read_text())
    assert set(columns) <= {"AP", "AP50", "AP75", "mask_AP", "mask_AP50"}
    assert columns.get("AP50", -1.0) == pytest.approx(round(metrics["bbox_mAP_50"], 4))
    assert set(METRIC_KEYS) < EXPECTED_KEYS
    assert on_disk["split"] == "test" and on_disk["num_images"] == 3
    assert on_disk["content_hash"] == run.dataset.content_hash
    assert on_disk["finetune_run_id"] == run.result.meta["finetune_run_id"]
    evaluate_run = mlflow.get_run(on_disk["evaluate_run_id"])
    assert evaluate_run.info.run_name == "evaluate" and evaluate_run.info.status == "FINISHED"
    assert on_disk["model_weights"].endswith("final/model.safetensors")
    for key in METRIC_KEYS:
        assert -1.0 <= on_disk[key] <= 1.0


def test_plots_and_tables(evaluated):
    run, _ = evaluated
    plots = Path(run.params["evaluate"]["out"]) / "plots"
    for name in ("train_loss.png", "val_ap.png", "per_class_ap.png", "predictions.png"):
        data = (plots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    with open(plots / "train_loss.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and float(rows[0]["loss"]) > 0
    with open(plots / "val_ap.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and "segm_mAP" in rows[0]
    with open(plots / "per_class_ap.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["class"] for r in rows] == run.result.meta["classes"]


def test_mlflow_logging(evaluated):
    _, metrics = evaluated
    runs = mlflow.search_runs(experiment_names=["vitdet-pipeline"],
                              filter_string="tags.stage = 'evaluate' and "
                                            "attributes.status = 'FINISHED'",
                              output_format="list")
    run = max(runs, key=lambda r: r.info.start_time)
    assert run.data.metrics["test/bbox_mAP"] == pytest.approx(metrics["bbox_mAP"])
    assert run.data.metrics["test/segm_mAP_50"] == pytest.approx(metrics["segm_mAP_50"])
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluate")}
    assert "evaluate/metrics.json" in arts and "evaluate/plots" in arts


def test_missing_model_fails_without_metrics(tiny_run, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # a previous run's output must not survive
    (out / "evaluation.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="train first"):
        evaluate(tiny_run.params, work_dir=tmp_path / "nowhere", out=out)
    assert not (out / "metrics.json").exists() and not (out / "evaluation.json").exists()
    proc = subprocess.run([sys.executable, "-m", "components.evaluate", "--help"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--compare-backends" in proc.stdout
