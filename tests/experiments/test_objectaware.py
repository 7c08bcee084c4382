"""The ``objectaware`` experiment: variant parsing, per-job pretraining paths, a real job."""
from __future__ import annotations

import json
import math

import pytest

from components.common.params import load_params
from components.experiments.objectaware import job_overrides, parse_entry
from components.experiments.plan import plan
from components.experiments.registry import get_experiment


def test_entries_parse_with_default_boxes_and_reject_typos():
    assert parse_entry("mocov2:obj_obj_dilate") == {
        "method": "mocov2", "policy": "obj_obj_dilate", "boxes": "bing", "family": "", "size": ""}
    assert parse_entry("byol:obj_scene@gt/vit:tiny")["family"] == "vit"
    for bad, why in [("simclr:scene_scene", "method"), ("mocov2:obj_all", "crop policy"),
                     ("mocov2:scene_scene@gt", "uses no boxes"), ("byol:obj_scene@edge", "boxes"),
                     ("byol:obj_scene/convnext:t", "backbone family")]:
        with pytest.raises(ValueError, match=why):
            parse_entry(bad)


def test_variants_set_the_methods_crop_options_and_jobs_get_their_own_backbone(tmp_path):
    params = load_params()
    params["experiments"]["work_dir"] = str(tmp_path)
    params["experiments"]["objectaware"] = {"variants": ["mocov2:scene_scene",
                                                         "mocov2:obj_obj_dilate@gt"],
                                            "seeds": [0, 1]}
    jobs = plan(get_experiment("objectaware"), params)
    assert [(j.variant.name, j.seed) for j in jobs] == [
        ("mocov2-scene_scene", 0), ("mocov2-obj_obj_dilate-gt", 0),
        ("mocov2-scene_scene", 1), ("mocov2-obj_obj_dilate-gt", 1)]
    gt = jobs[1].params
    assert gt["pretrain"]["mocov2"]["crops"] == {**params["pretrain"]["mocov2"]["crops"],
                                                 "policy": "obj_obj_dilate", "boxes": "gt"}
    ckpt = gt["model"]["checkpoint"]
    assert ckpt.startswith(str(jobs[1].dir / "pretrain-")) and ckpt.endswith(
        "mocov2/backbone.safetensors")
    assert gt["pretrain"]["out"] in ckpt
    # the folder hash follows the pretraining recipe and the seed, so resume reruns a changed one
    assert jobs[0].params["model"]["checkpoint"] != jobs[2].params["model"]["checkpoint"].replace(
        "-s1", "-s0")
    changed = dict(gt, pretrain={**gt["pretrain"], "epochs": 9})
    assert job_overrides(jobs[1].variant, changed, jobs[1].dir) != job_overrides(
        jobs[1].variant, gt, jobs[1].dir)


@pytest.mark.slow
def test_one_job_pretrains_probes_and_fine_tunes(tiny_ds, tmp_path):
    from components.experiments.runner import run_experiment
    from testkit.finetune import tiny_params

    params = tiny_params(load_params(), tiny_ds.root, tmp_path / "unused",
                         model__backbone="resnet", model__size="r18", model__cfg_options={})
    params["pretrain"]["mocov2"].update(max_steps=2, batch_size=4, mlp_dim=32, proj_dim=16,
                                        queue_size=16)
    params["experiments"] = {"out": str(tmp_path / "reports"), "work_dir": str(tmp_path / "runs"),
                             "seeds": [0], "recipe": {},
                             "objectaware": {"variants": ["mocov2:obj_obj_dilate@gt"],
                                             "detection": True,
                                             "probe": {"test_split": "val"}}}
    outcome = run_experiment("objectaware", params, validation_marker=tiny_ds.marker,
                             inference_images=1, command="pytest objectaware")
    assert outcome.exit_code == 0, outcome.results
    (result,) = outcome.results.values()
    s = result["summary"]
    assert 0.0 <= s["probe_mAP"] <= 1.0 and math.isfinite(s["bbox_mAP"])
    assert result["inputs"]["crops"]["policy"] == "obj_obj_dilate"
    assert result["inputs"]["pretrain"]["steps"] == 2
    report = (outcome.report / "report.md").read_text()
    assert "probe mAP" in report and "`obj_obj_dilate`" in report
    assert json.loads((outcome.report / "results.json").read_text())


def test_detection_runs_for_the_listed_variants_at_the_listed_seeds():
    from components.experiments.objectaware import _detects, variants

    section = {"variants": ["random", "mocov2:scene_scene"], "detection": ["mocov2:scene_scene"],
               "detection_seeds": [0]}
    rnd, moco = variants(section, load_params())
    assert not _detects(rnd, section, 0)
    assert _detects(moco, section, 0) and not _detects(moco, section, 1)
    assert _detects(moco, {**section, "detection_seeds": None}, 1)
    with pytest.raises(ValueError, match="not in experiments.objectaware.variants"):
        variants({**section, "detection": ["byol:scene_scene"]}, load_params())
