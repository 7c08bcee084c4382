"""COCO metrics: both backends agree, and perfect detections score 1.0."""
from __future__ import annotations

import random

import pytest
from pycocotools.coco import COCO

from components.data.synthetic import generate, tiny_config
from components.evaluate import metrics as M


@pytest.fixture(scope="module")
def gt_and_perfect(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics") / "ds"
    generate(root, tiny_config(), seed=3)
    ann = root / "annotations" / "instances_val.json"
    coco = COCO(str(ann))
    dets = []
    for a in coco.dataset["annotations"]:
        if a.get("iscrowd"):
            continue
        rle = coco.annToRLE(a)
        rle["counts"] = rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
        dets.append(dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"],
                         score=0.9, segmentation=rle))
    return ann, dets


@pytest.mark.parametrize("backend", M.BACKENDS)
@pytest.mark.parametrize("iou", M.IOU_TYPES)
def test_perfect_detections_score_one(gt_and_perfect, backend, iou):
    ann, dets = gt_and_perfect
    r = M.coco_evaluate(ann, dets, iou, backend)
    assert r.stats["mAP"] == pytest.approx(1.0) and r.stats["mAP_50"] == pytest.approx(1.0)
    present = {a["category_id"] for a in COCO(str(ann)).dataset["annotations"]}
    names = {c["id"]: c["name"] for c in COCO(str(ann)).dataset["categories"]}
    assert all(r.per_class[names[c]] == pytest.approx(1.0) for c in present)


def test_backends_agree_on_noisy_detections(gt_and_perfect):
    ann, dets = gt_and_perfect
    rng = random.Random(0)
    noisy = [dict(d, bbox=[v + rng.uniform(-4, 4) for v in d["bbox"]], score=rng.random())
             for d in dets]
    report = M.compare_backends(ann, {"bbox": noisy, "segm": noisy[1:]})
    for iou in M.IOU_TYPES:
        assert report[iou]["max_abs_diff"] < 1e-9
        assert 0 < report[iou]["stats"]["faster"]["mAP"] < 1


def test_no_detections_is_zero(gt_and_perfect):
    ann, _ = gt_and_perfect
    r = M.coco_evaluate(ann, [], "segm")
    assert r.stats == {k: 0.0 for k in M.STAT_KEYS} and r.num_detections == 0
