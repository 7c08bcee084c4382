"""How COCO ground truth is scored when an instance has no usable mask (the COCO record
contract, components/validation/suites/coco_contract.md): one definition for every evaluator.

An accepted instance may lack a mask (no ``segmentation``, ``[]``, zero-area polygons, an
all-background RLE): its box is a normal ground-truth box; for mask AP it becomes a crowd
region covering its box, so a predicted mask there is neither a hit nor a false positive
(COCO ignores detections matched to crowd regions). Everything else is returned unchanged.
"""
from __future__ import annotations

import copy
from typing import Any

from components.data.masks import polygon_area, rle_foreground, rle_problem

__all__ = ["has_mask", "for_iou_type"]


def has_mask(ann: dict) -> bool:
    """Whether ``ann['segmentation']`` holds at least one foreground pixel's worth of mask."""
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        return bool(seg) and polygon_area(seg) >= 0.5
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        h, w = (int(v) for v in seg["size"])
        return rle_problem(seg["counts"], h, w) is None and rle_foreground(seg["counts"]) > 0
    return False


def _box_polygon(bbox: list[float]) -> list[list[float]]:
    x, y, w, h = (float(v) for v in bbox)
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def for_iou_type(gt: dict[str, Any], iou_type: str) -> dict[str, Any]:
    """The ground truth ``gt`` (a COCO dict) as scored for ``iou_type`` (``bbox`` | ``segm``);
    a copy whenever something changes."""
    if iou_type != "segm":
        return gt
    fix = [i for i, a in enumerate(gt.get("annotations", [])) if not has_mask(a)]
    if not fix:
        return gt
    out = copy.deepcopy(gt)
    for i in fix:
        ann = out["annotations"][i]
        ann["segmentation"] = _box_polygon(ann["bbox"])
        ann["iscrowd"] = 1
    return out
