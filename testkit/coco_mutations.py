"""Mutations of a COCO dataset folder, and the check that the gate and the stages agree on it.

The property (tests/validation/test_gate_contract.py, benchmarks/gate_contract_fuzz.py): for any
mutated dataset, either the validation gate rejects it with lines naming the record and the rule,
or a short fine-tune and an evaluation run to the end. Each mutation edits one record of one
split (or renames an image file) in ways real exports do: geometry, ids, types, text.
"""
from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from components.data import layout

__all__ = ["MUTATIONS", "Outcome", "mutate", "check"]

SPLITS = ("train", "val", "test")


def _anns(coco: dict, rnd: random.Random, crowd: bool | None = False) -> dict:
    pool = [a for a in coco["annotations"] if crowd is None or bool(a.get("iscrowd")) == crowd]
    return rnd.choice(pool or coco["annotations"])


def _seg_empty(coco, rnd, root):
    _anns(coco, rnd)["segmentation"] = []


def _seg_absent(coco, rnd, root):
    _anns(coco, rnd, None).pop("segmentation", None)


def _seg_degenerate(coco, rnd, root):
    a = _anns(coco, rnd)
    x, y = a["bbox"][:2]
    a["segmentation"] = [[x, y, x, y, x, y]]


def _seg_odd(coco, rnd, root):
    a = _anns(coco, rnd)
    a["segmentation"] = [a["segmentation"][0][:-1]] if a.get("segmentation") else [[1, 2, 3]]


def _seg_short(coco, rnd, root):
    _anns(coco, rnd)["segmentation"] = [[1.0, 1.0, 2.0, 2.0]]


def _image_of(coco, ann):
    return next(im for im in coco["images"] if im["id"] == ann["image_id"])


def _rle(mask: np.ndarray, compressed: bool) -> dict:
    from pycocotools import mask as mask_utils

    if compressed:
        enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": list(enc["size"]), "counts": enc["counts"].decode()}
    flat, runs, cur, n = mask.flatten(order="F"), [], 0, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            runs.append(n)
            cur, n = v, 1
    runs.append(n)
    return {"size": list(mask.shape), "counts": [int(r) for r in runs]}


def _box_mask(coco, ann) -> np.ndarray:
    im = _image_of(coco, ann)
    m = np.zeros((im["height"], im["width"]), np.uint8)
    x, y, w, h = (int(round(v)) for v in ann["bbox"])
    m[y:y + max(h, 1), x:x + max(w, 1)] = 1
    return m


def _rle_valid(coco, rnd, root):
    a = _anns(coco, rnd)
    a["segmentation"] = _rle(_box_mask(coco, a), compressed=rnd.random() < 0.5)


def _rle_all_zero(coco, rnd, root):
    a = _anns(coco, rnd)
    a["segmentation"] = _rle(np.zeros_like(_box_mask(coco, a)), compressed=rnd.random() < 0.5)


def _rle_wrong_size(coco, rnd, root):
    a = _anns(coco, rnd)
    m = _box_mask(coco, a)
    a["segmentation"] = _rle(np.pad(m, ((0, 3), (0, 0))), compressed=rnd.random() < 0.5)


def _rle_bad_counts(coco, rnd, root):
    a = _anns(coco, rnd)
    seg = _rle(_box_mask(coco, a), compressed=False)
    seg["counts"][-1] += rnd.choice([-5, 7, 1000])
    a["segmentation"] = seg


def _rle_garbage_string(coco, rnd, root):
    a = _anns(coco, rnd)
    im = _image_of(coco, a)
    a["segmentation"] = {"size": [im["height"], im["width"]], "counts": "\x01zz"}


def _bbox_partly_outside(coco, rnd, root):
    a = _anns(coco, rnd)
    im = _image_of(coco, a)
    a["bbox"][0] = im["width"] - a["bbox"][2] / 2


def _bbox_outside(coco, rnd, root):
    a = _anns(coco, rnd)
    a["bbox"][0] = _image_of(coco, a)["width"] + 10.0


def _bbox_zero(coco, rnd, root):
    _anns(coco, rnd, None)["bbox"][2] = 0


def _bbox_negative(coco, rnd, root):
    _anns(coco, rnd, None)["bbox"][3] = -4.0


def _bbox_tiny(coco, rnd, root):
    a = _anns(coco, rnd)
    a["bbox"][2] = a["bbox"][3] = 0.5


def _dup_ann_id(coco, rnd, root):
    a, b = rnd.sample(coco["annotations"], 2)
    b["id"] = a["id"]


def _dup_image_id(coco, rnd, root):
    a, b = rnd.sample(coco["images"], 2)
    b["id"] = a["id"]


def _dangling_image(coco, rnd, root):
    _anns(coco, rnd, None)["image_id"] = 10_000


def _dangling_category(coco, rnd, root):
    _anns(coco, rnd, None)["category_id"] = 999


def _string_number(coco, rnd, root):
    a = _anns(coco, rnd, None)
    key = rnd.choice(["id", "image_id", "category_id", "area"])
    a[key] = str(a[key])


def _string_bbox(coco, rnd, root):
    a = _anns(coco, rnd, None)
    a["bbox"] = [str(v) for v in a["bbox"]]


def _null_field(coco, rnd, root):
    rec = rnd.choice([_anns(coco, rnd, None), rnd.choice(coco["images"]),
                      rnd.choice(coco["categories"])])
    rec[rnd.choice([k for k in rec if k != "segmentation"] or ["id"])] = None


def _nan(coco, rnd, root):
    a = _anns(coco, rnd, None)
    value = rnd.choice([math.nan, math.inf, -math.inf])
    if rnd.random() < 0.5:
        a["bbox"][rnd.randrange(4)] = value
    else:
        a["area"] = value


def _unicode_category(coco, rnd, root):
    rnd.choice(coco["categories"])["name"] = rnd.choice(["kreis ø", "三角形", "star  ★", " sq "])


def _duplicate_category_name(coco, rnd, root):
    a, b = rnd.sample(coco["categories"], 2)
    b["name"] = a["name"]


def _extra_category(coco, rnd, root):
    coco["categories"].append({"id": 77, "name": "unused shape", "supercategory": "none"})


def _rename_image(coco, rnd, root):
    im = rnd.choice(coco["images"])
    old = root / layout.IMAGES / im["file_name"]
    new_rel = rnd.choice(["with space/ünïcode file.jpg", "sub dir/x y.jpg",
                                  "deep/a/b/c.jpg"])
    new = root / layout.IMAGES / new_rel
    new.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(old), str(new))
    im["file_name"] = new_rel


def _missing_image_file(coco, rnd, root):
    im = rnd.choice(coco["images"])
    (root / layout.IMAGES / im["file_name"]).unlink()


def _extra_fields(coco, rnd, root):
    _anns(coco, rnd, None)["attributes"] = {"occluded": True, "note": "ok"}
    rnd.choice(coco["images"])["license"] = 3
    coco["info"] = {"description": "export", "year": 2026}


def _crowd_polygon(coco, rnd, root):
    _anns(coco, rnd)["iscrowd"] = 1


def _iscrowd_two(coco, rnd, root):
    _anns(coco, rnd, None)["iscrowd"] = 2


def _image_without_annotations(coco, rnd, root):
    im = rnd.choice(coco["images"])
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != im["id"]] \
        or coco["annotations"]


def _wrong_image_size(coco, rnd, root):
    rnd.choice(coco["images"])["width"] += 7


MUTATIONS: dict[str, Callable] = {f.__name__.lstrip("_"): f for f in (
    _seg_empty, _seg_absent, _seg_degenerate, _seg_odd, _seg_short, _rle_valid, _rle_all_zero,
    _rle_wrong_size, _rle_bad_counts, _rle_garbage_string, _bbox_partly_outside, _bbox_outside,
    _bbox_zero, _bbox_negative, _bbox_tiny, _dup_ann_id, _dup_image_id, _dangling_image,
    _dangling_category, _string_number, _string_bbox, _null_field, _nan, _unicode_category,
    _duplicate_category_name, _extra_category, _rename_image, _missing_image_file, _extra_fields,
    _crowd_polygon, _iscrowd_two, _image_without_annotations, _wrong_image_size)}
# Mutations that must be applied to every split (the detector's classes come from train).
_ALL_SPLITS = {"unicode_category", "extra_category", "duplicate_category_name"}


def mutate(root: Path, names: list[str], seed: int) -> list[str]:
    """Apply the named mutations to the dataset folder ``root`` in place; returns what was done
    (``name@split``)."""
    rnd = random.Random(seed)
    done = []
    for name in names:
        splits = list(SPLITS) if name in _ALL_SPLITS and rnd.random() < 0.8 else \
            [rnd.choice(SPLITS)]
        for split in splits:
            path = layout.coco_json(root, split)
            coco = json.loads(path.read_text())
            MUTATIONS[name](coco, random.Random(seed if name in _ALL_SPLITS else rnd.random()),
                            root)
            path.write_text(json.dumps(coco, allow_nan=True, ensure_ascii=rnd.random() < 0.5))
            done.append(f"{name}@{split}")
    return done


@dataclass
class Outcome:
    accepted: bool
    mutations: list[str]
    failures: list[str]
    warnings: int
    metrics: dict | None = None


def check(root: Path, work: Path, mutations: list[str], params_overrides: dict | None = None
          ) -> Outcome:
    """Validate ``root``; if accepted, fine-tune the tiny model on it and evaluate. Raises an
    ``AssertionError`` when the contract breaks: a rejection that names no record, or a stage
    that fails on accepted data."""
    from components.common.params import load_params
    from components.evaluate.stage import evaluate
    from components.train.finetune import finetune
    from components.validation import validate_dataset
    from testkit.finetune import tiny_params

    marker = work / "validation" / "validated.json"
    result = validate_dataset(root, {"decode_images": True}, marker.parent, progress=False)
    if not result.success:
        lines = [str(f) for f in result.failures]
        named = [f for f in result.failures if f.record not in ("-", "")]
        assert named, f"{mutations}: rejected without naming a record: {lines[:5]}"
        assert all(f.rule.strip() for f in result.failures), lines[:5]
        return Outcome(False, mutations, lines, len(result.warnings))
    params = tiny_params(load_params(), root, work / "work", **(params_overrides or {}))
    try:
        finetune(params, validation_marker=marker)
        metrics = evaluate(params)
    except Exception as exc:  # the property: accepted data never breaks a stage
        raise AssertionError(f"{mutations}: the gate accepted the data (warnings: "
                             f"{[str(w) for w in result.warnings][:3]}) but a stage failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    return Outcome(True, mutations, [], len(result.warnings), metrics)
