"""A real experiment end to end: ``fpn`` with two variants at one seed on the tiny model.

Each job runs in its own process (fine-tune + inference timing + evaluate: ~30-60 s each on
2 CPU cores), nested under one MLflow parent run; then the report. Shared by every test here.
"""
from __future__ import annotations

import copy
import csv
import json
import math

import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.common.params import load_params
from components.experiments.__main__ import main
from components.experiments.runner import run_experiment
from testkit.finetune import TINY_OVERRIDES, tiny_params
from components.tracking.runs import parent_run_id

pytestmark = pytest.mark.slow
VARIANTS = ["multiscale", "single"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fpn(tiny_ds, tmp_path_factory):
    base = tmp_path_factory.mktemp("exp-e2e")
    cfg = copy.deepcopy(TINY_OVERRIDES["model.cfg_options"])
    cfg["model.test_cfg.rcnn.max_per_img"] = 20   # fewer masks to paste: faster val/test
    params = tiny_params(load_params(), tiny_ds.root, base / "unused", model__cfg_options=cfg)
    params["experiments"] = {"out": str(base / "reports"), "work_dir": str(base / "runs"),
                             "seeds": [0], "recipe": {"finetune.lr": 0.0001}}
    lines: list[str] = []
    outcome = run_experiment("fpn", params, variants=VARIANTS, validation_marker=tiny_ds.marker,
                             inference_images=2, command="pytest fpn", echo=lines.append)
    return outcome, params, lines, base


def test_every_variant_has_a_finite_result(fpn):
    outcome, params, lines, _ = fpn
    assert outcome.exit_code == 0, "\n".join(lines)
    assert outcome.ran == ["multiscale-s0", "single-s0"] and not outcome.failed
    for v in VARIANTS:
        folder = outcome.results[(v, 0)]
        res = json.loads((outcome.report.parents[1] / "runs" / "fpn" / f"{v}-s0" /
                          "result.json").read_text())
        assert res == folder
        assert res["status"] == "ok" and res["overrides"] == {"model.adapter": v}
        s = res["summary"]
        assert all(math.isfinite(s[k]) and 0 <= s[k] <= 1 for k in ("bbox_mAP", "segm_mAP"))
        assert s["train_iter_s"] > 0 and s["infer_s_per_img"] > 0 and s["peak_train_mem_mib"] > 0
        assert res["timings"]["warmup_excluded"] and res["timings"]["images"] == 2
        assert "RSS" in res["memory"]["method"] or "cuda" in res["memory"]["method"]
        assert [p["epoch"] for p in res["val_curve"]] == [0, 1]  # initial model, epoch 1
        assert res["content_hash"] and res["data_hash"] and res["config_hash"]
        assert res["finetune_run_id"] != res["evaluate_run_id"]
    assert any("ETA" in line and "start" in line for line in lines)


def test_report_folder(fpn):
    outcome, *_ = fpn
    md = (outcome.report / "report.md").read_text()
    for v in VARIANTS:
        row = next(line for line in md.splitlines() if line.startswith(f"| `{v}` | 0."))
        assert row.endswith("| 1/1 | ok |")
    assert "Table 2" in md and "finetune.lr: 0.0001" in md and "pytest fpn" in md
    rows = list(csv.DictReader((outcome.report / "results.csv").open()))
    assert [(r["variant"], r["status"]) for r in rows] == [("multiscale", "ok"), ("single", "ok")]
    assert (outcome.report / "ap.png").read_bytes()[:8] == PNG
    doc = json.loads((outcome.report / "results.json").read_text())
    assert [v["status"] for v in doc["variants"]] == ["ok", "ok"]


def test_mlflow_one_parent_with_tagged_nested_runs_and_exp_metrics(fpn):
    outcome, *_ = fpn
    client = MlflowClient()
    parent = parent_run_id(outcome.pipeline_id)
    assert parent is not None
    prun = client.get_run(parent)
    assert prun.data.tags["experiment"] == "fpn"
    assert "report/report.md" in {a.path for a in client.list_artifacts(parent, "report")}
    stages = client.search_runs(
        [prun.info.experiment_id],
        filter_string=f"tags.pipeline_id = '{outcome.pipeline_id}' AND tags.run_role = 'stage'")
    seen = sorted((r.data.tags["stage"], r.data.tags["variant"]) for r in stages)
    assert seen == [("evaluate", "multiscale"), ("evaluate", "single"),
                    ("finetune", "multiscale"), ("finetune", "single")]
    for r in stages:
        assert r.data.tags["mlflow.parentRunId"] == parent
        assert r.data.tags["experiment"] == "fpn" and r.data.tags["seed"] == "0"
        assert r.data.params["model.adapter"] == r.data.tags["variant"]
        assert r.data.params["finetune.lr"] == "0.0001"          # the recipe reached the stage
        if r.data.tags["stage"] == "finetune":
            res = outcome.results[(r.data.tags["variant"], 0)]
            assert res["finetune_run_id"] == r.info.run_id
            for key in ("bbox_mAP", "segm_mAP", "peak_train_mem_mib", "train_iter_s",
                        "infer_s_per_img"):
                assert r.data.metrics[f"exp/{key}"] == pytest.approx(res["summary"][key])


def test_rerun_skips_unchanged_jobs_and_report_rerenders(fpn, tmp_path):
    outcome, params, _, base = fpn

    def must_not_run(*args):
        pytest.fail("an unchanged job was run again")

    again = run_experiment("fpn", params, variants=VARIANTS, launch=must_not_run,
                           inference_images=2, echo=lambda s: None)
    assert again.skipped == ["multiscale-s0", "single-s0"] and again.exit_code == 0
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    (outcome.report / "report.md").unlink()
    assert main(["report", "fpn", "--params", str(path), "--variants", *VARIANTS,
                 "--seeds", "0", "--no-mlflow"]) == 0
    assert "| `single` | 0." in (outcome.report / "report.md").read_text()
