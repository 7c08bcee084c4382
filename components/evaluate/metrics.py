"""COCO bbox / segm metrics on dumped detections, with two interchangeable backends.

``faster`` (faster-coco-eval's C++ ``COCOeval_faster``, default) and ``pycocotools`` (the
reference ``COCOeval`` that mmdet's ``CocoMetric`` uses) run with mmdet's ``CocoMetric``
settings (all images and categories, IoU 0.50:0.95, ``maxDets = (100, 300, 1000)``; for segm
the box is dropped from each detection so areas come from masks), so the numbers match
mmdet's to its 3-decimal rounding. :func:`compare_backends` checks that on real predictions.

Ground truth without a usable mask scores as a crowd region for segm
(:mod:`components.data.scoring`, the COCO record contract).

Keys: ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l`` (= COCOeval ``stats[0:6]``); per-class AP
is the mean of ``eval['precision'][:, :, k, area=all, maxDets=-1]`` over valid entries.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.data import scoring

__all__ = ["STAT_KEYS", "IOU_TYPES", "BACKENDS", "CocoResult", "coco_evaluate",
           "compare_backends", "load_detections"]

STAT_KEYS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")
IOU_TYPES = ("bbox", "segm")
BACKENDS = ("faster", "pycocotools")
MAX_DETS = [100, 300, 1000]  # mmdet CocoMetric's proposal_nums; AP uses the last


@dataclass
class CocoResult:
    iou_type: str
    backend: str
    stats: dict[str, float]
    per_class: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    num_detections: int = 0


def load_detections(path: str | Path) -> list[dict]:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else []


def _api(backend: str):
    if backend == "faster":
        from faster_coco_eval import COCO, COCOeval_faster

        def make_eval(gt, dt, iou):
            return COCOeval_faster(gt, dt, iou, print_function=lambda *a, **k: None,
                                   rle_iou_max_workers=1)
        return COCO, make_eval
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    raise ValueError(f"COCO backend must be one of {BACKENDS}, got {backend!r}")


def coco_evaluate(gt: str | Path | dict, detections: list[dict], iou_type: str,
                  backend: str = "faster") -> CocoResult:
    """AP metrics of ``detections`` (COCO results format) against the ``gt`` COCO JSON.

    No detections at all gives 0.0 everywhere (COCO's ``loadRes`` rejects an empty list).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    coco_cls, make_eval = _api(backend)
    t0 = time.perf_counter()
    gt_data = json.loads(Path(gt).read_text()) if not isinstance(gt, dict) else gt
    gt_data = scoring.for_iou_type(gt_data, iou_type)  # mask-less instances: crowd for segm
    cats = sorted(gt_data["categories"], key=lambda c: c["id"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = coco_cls()
        coco_gt.dataset = copy.deepcopy(gt_data)
        coco_gt.createIndex()
        if not detections:
            return CocoResult(iou_type, backend, {k: 0.0 for k in STAT_KEYS},
                              {c["name"]: 0.0 for c in cats}, time.perf_counter() - t0, 0)
        dets = copy.deepcopy(detections)
        if iou_type == "segm":
            for d in dets:
                d.pop("bbox", None)  # area from the mask, as mmdet's CocoMetric does
        coco_dt = coco_gt.loadRes(dets)
        ev = make_eval(coco_gt, coco_dt, iou_type)
        ev.params.catIds = [c["id"] for c in cats]
        ev.params.imgIds = sorted(coco_gt.getImgIds())
        ev.params.maxDets = list(MAX_DETS)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {k: float(ev.stats[i]) for i, k in enumerate(STAT_KEYS)}
    precision = np.asarray(ev.eval["precision"])  # (iou, recall, class, area, maxDets)
    per_class = {}
    for k, cat in enumerate(cats):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class[cat["name"]] = float(p.mean()) if p.size else float("nan")
    return CocoResult(iou_type, backend, stats, per_class, time.perf_counter() - t0, len(dets))


def compare_backends(gt: str | Path, detections: dict[str, list[dict]]) -> dict[str, Any]:
    """Run both backends on the same detections: timings and the largest metric difference."""
    report: dict[str, Any] = {}
    for iou in (t for t in IOU_TYPES if t in detections):
        results = {b: coco_evaluate(gt, detections[iou], iou, b) for b in BACKENDS}
        diff = max(abs(results["faster"].stats[k] - results["pycocotools"].stats[k])
                   for k in STAT_KEYS)
        report[iou] = {
            "seconds": {b: round(r.seconds, 4) for b, r in results.items()},
            "max_abs_diff": diff,
            "stats": {b: r.stats for b, r in results.items()},
        }
    return report
