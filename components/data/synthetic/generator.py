"""Write a whole synthetic dataset folder (see :mod:`components.data.layout`).

Every image gets its own RNG seeded from ``(seed, split, index)``, so the result does not
depend on the number of worker processes or on the order images are rendered in: same
seed and config -> byte-identical files and the same manifest ``content_hash``.
"""
from __future__ import annotations

import copy
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Mapping

import cv2
import numpy as np
from tqdm import tqdm

from components.common.atomic import atomic_dir
from components.data import layout
from components.data.formats import (mask_to_polygons, mask_to_rle, write_captions, write_coco,
                                     write_csv, write_oi_classes)
from components.data.manifest import write_manifest
from components.data.synthetic.captions import caption
from components.data.synthetic.scene import render_scene
from components.data.synthetic.presets import DEFAULT_PRESET, PRESETS
from components.data.synthetic.shapes import SHAPES, SUPERCATEGORY

__all__ = ["DEFAULTS", "resolve_config", "generate", "categories", "oi_label", "tiny_config"]

# What a partial cfg passed to generate() without a ``preset`` is completed from.
DEFAULTS: dict[str, Any] = PRESETS[DEFAULT_PRESET]
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3, layout.UNLABELED: 4}
_AUTO_PARALLEL_MIN = 150  # below this many images a process pool costs more than it saves


def tiny_config(**overrides: Any) -> dict:
    """A config that renders in well under a second: for other suites' test datasets.

    Example: ``generate(tmp_path / "ds", tiny_config(crowd_fraction=0.5))``.
    """
    cfg = resolve_config({
        "image_size": 96,
        "num_images": {"train": 6, "val": 3, "test": 3, "unlabeled": 2},
        "objects_per_image": [2, 5],
        "scale_range": [0.12, 0.45],
    })
    for key, value in overrides.items():
        if key not in cfg:
            raise KeyError(f"unknown data.synthetic key {key!r}; known: {sorted(cfg)}")
        cfg[key] = value
    return resolve_config(cfg)


def resolve_config(cfg: Mapping[str, Any] | None) -> dict:
    """Complete a (partial) ``data.synthetic`` dict from its ``preset`` and check it.

    ``preset`` names an entry of :data:`PRESETS` (default :data:`DEFAULT_PRESET`); every other
    key overrides the preset's value unless it is None. The result names its preset.
    """
    cfg = dict(cfg or {})
    preset = cfg.pop("preset", None) or DEFAULT_PRESET
    if preset not in PRESETS:
        raise KeyError(f"data.synthetic.preset: unknown preset {preset!r}; known: {sorted(PRESETS)} "
                       "(components/data/synthetic/presets.py)")
    out = copy.deepcopy(PRESETS[preset])
    for key, value in cfg.items():
        if key not in out:
            raise KeyError(f"data.synthetic.{key}: unknown key; known: {sorted(out)}")
        if value is not None:
            out[key] = dict(value) if key == "num_images" else value
    nums = {**{s: 0 for s in _SPLIT_CODE}, **{k: int(v) for k, v in out["num_images"].items()}}
    unknown = set(nums) - set(_SPLIT_CODE)
    if unknown:
        raise KeyError(f"data.synthetic.num_images: unknown split(s) {sorted(unknown)}; use {list(_SPLIT_CODE)}")
    out["num_images"] = nums
    out["objects_per_image"] = [int(v) for v in out["objects_per_image"]]
    out["scale_range"] = [float(v) for v in out["scale_range"]]
    out["classes"] = [str(c) for c in out["classes"]]
    unknown_cls = [c for c in out["classes"] if c not in SHAPES]
    if unknown_cls or not out["classes"] or len(set(out["classes"])) != len(out["classes"]):
        raise ValueError(f"data.synthetic.classes: need distinct names from {list(SHAPES)}, got "
                         f"{out['classes']}")
    # ids follow SHAPES order whatever order the list is written in: one class, one id
    out["classes"] = [c for c in SHAPES if c in out["classes"]]
    lo, hi = out["objects_per_image"]
    smin, smax = out["scale_range"]
    rules = [
        (int(out["image_size"]) >= 32, "image_size must be >= 32"),
        (1 <= lo <= hi, "objects_per_image must be [min, max] with 1 <= min <= max"),
        (0 < smin <= smax <= 1.5, "scale_range must be [small, large] with 0 < small <= large"),
        (0.0 <= float(out["occlusion"]) < 1.0, "occlusion must be in [0, 1)"),
        (0.0 <= float(out["clutter"]) <= 1.0, "clutter must be in [0, 1]"),
        (0.0 <= float(out["crowd_fraction"]) <= 1.0, "crowd_fraction must be in [0, 1]"),
        (1 <= int(out["jpeg_quality"]) <= 100, "jpeg_quality must be in [1, 100]"),
        (all(v >= 0 for v in nums.values()), "num_images must be >= 0"),
    ]
    for ok, rule in rules:
        if not ok:
            raise ValueError(f"data.synthetic: {rule} (got {out})")
    return {"preset": preset, **out}


def categories(classes: list[str] | None = None) -> list[dict]:
    """COCO categories of the synthetic classes (default: all), ids from 1 in :data:`SHAPES`
    order."""
    names = [c for c in SHAPES if classes is None or c in classes]
    return [{"id": i, "name": name, "supercategory": SUPERCATEGORY[name]}
            for i, name in enumerate(names, start=1)]


def oi_label(name: str) -> str:
    """OpenImages-style LabelName of a synthetic class, e.g. ``/m/syn_circle``."""
    return f"/m/syn_{name}"


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _SPLIT_CODE[split], index])


def _render_job(job: tuple[str, int, bool, dict, int, str]) -> dict:
    """Render, encode and write one image; return its annotation record (no ids yet)."""
    split, index, crowd, cfg, seed, images_root = job
    rng = _image_rng(seed, split, index)
    scene = render_scene(rng, cfg, crowd=crowd)
    rel = f"{split}/{index + 1:06d}.jpg"
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(scene.image[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(cfg["jpeg_quality"])])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {rel}")
    (Path(images_root) / rel).write_bytes(buf.tobytes())
    size = scene.image.shape[0]
    record: dict[str, Any] = {"file_name": rel, "width": size, "height": size, "objects": []}
    if split == layout.UNLABELED:
        return record
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.visible_box()
        if obj.iscrowd:
            segmentation: Any = mask_to_rle(obj.visible)
        else:
            segmentation = mask_to_polygons(obj.visible[y0:y1, x0:x1], offset=(x0, y0))
        record["objects"].append({
            "category": obj.category, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            "area": int(obj.visible_area), "segmentation": segmentation, "iscrowd": int(obj.iscrowd),
            "occluded": bool(obj.occluded), "truncated": bool(obj.truncated),
        })
    record["caption"] = caption(scene, rng)
    return record


def _jobs(cfg: dict, seed: int, images_root: Path) -> Iterator[tuple[str, int, bool, dict, int, str]]:
    for split, code in _SPLIT_CODE.items():
        n = cfg["num_images"][split]
        n_crowd = 0 if split == layout.UNLABELED else int(round(cfg["crowd_fraction"] * n))
        pick = np.random.default_rng([int(seed), code, 0xC0]).permutation(n)[:n_crowd]
        crowd = set(pick.tolist())
        for i in range(n):
            yield split, i, i in crowd, cfg, seed, str(images_root)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _render_all(cfg: dict, seed: int, images_root: Path, workers: int, progress: bool) -> list[dict]:
    jobs = list(_jobs(cfg, seed, images_root))
    bar = tqdm(total=len(jobs), desc="render", unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            records = []
            for job in jobs:
                records.append(_render_job(job))
                bar.update()
            return records
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            records = []
            for rec in pool.map(_render_job, jobs, chunksize=8):
                records.append(rec)
                bar.update()
            return records
    finally:
        bar.close()


def _write_labels(root: Path, cfg: dict, records: list[dict]) -> None:
    cats = categories(cfg["classes"])
    cat_id = {c["name"]: c["id"] for c in cats}
    write_oi_classes(layout.oi_classes_csv(root), [(oi_label(c["name"]), c["name"]) for c in cats])
    for split in layout.SPLITS:
        if not cfg["num_images"][split]:
            continue
        recs = [r for r in records if r["file_name"].startswith(f"{split}/")]
        images, anns, bbox_rows, label_rows, caps = [], [], [], [], []
        for image_id, rec in enumerate(recs, start=1):
            w, h = rec["width"], rec["height"]
            images.append({"id": image_id, "file_name": rec["file_name"], "width": w, "height": h})
            image_key = Path(rec["file_name"]).stem
            for obj in rec["objects"]:
                x, y, bw, bh = obj["bbox"]
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[obj["category"]],
                             "bbox": obj["bbox"], "area": obj["area"], "segmentation": obj["segmentation"],
                             "iscrowd": obj["iscrowd"]})
                bbox_rows.append([image_key, "synthetic", oi_label(obj["category"]), 1,
                                  f"{x / w:.6f}", f"{(x + bw) / w:.6f}", f"{y / h:.6f}", f"{(y + bh) / h:.6f}",
                                  int(obj["occluded"]), int(obj["truncated"]), obj["iscrowd"], 0, 0])
            present = sorted({o["category"] for o in rec["objects"]}, key=cat_id.get)
            label_rows += [[image_key, "synthetic", oi_label(c), 1] for c in present]
            caps.append({"image": rec["file_name"], "caption": rec["caption"]})
        info = {"description": f"synthetic shapes dataset, split {split}", "version": "1",
                "contributor": "components.data.synthetic"}
        write_coco(layout.coco_json(root, split), images, anns, cats, info)
        write_csv(layout.oi_bbox_csv(root, split), layout.OI_BBOX_COLUMNS, bbox_rows)
        write_csv(layout.oi_labels_csv(root, split), layout.OI_LABEL_COLUMNS, label_rows)
        write_captions(layout.captions_jsonl(root, split), caps)


def generate(out: str | Path, cfg: Mapping[str, Any] | None = None, seed: int = 0, *,
             workers: int | None = None, progress: bool = False) -> dict:
    """Render a synthetic dataset into ``out`` (replaced atomically) and return its manifest.

    Args:
        out: dataset folder to create/replace; it appears whole or not at all.
        cfg: the ``data.synthetic`` params (partial dicts are completed from :data:`DEFAULTS`).
            For tests use :func:`tiny_config` (96 px, 14 images: ~0.3 s).
        seed: the top-level ``seed``; same seed + cfg -> identical files.
        workers: render processes; None = 1 for small jobs, else up to 2 (CPU count).
        progress: show a tqdm bar.

    Returns:
        the manifest dict (see :mod:`components.data.manifest`).
    """
    cfg = resolve_config(cfg)
    total = sum(cfg["num_images"].values())
    if workers is None:
        workers = 1 if total < _AUTO_PARALLEL_MIN else max(1, min(2, os.cpu_count() or 1))
    with atomic_dir(out) as tmp:
        images_root = layout.images_dir(tmp)
        for split, n in cfg["num_images"].items():
            if n:
                (images_root / split).mkdir(parents=True, exist_ok=True)
        records = _render_all(cfg, seed, images_root, workers, progress)
        _write_labels(tmp, cfg, records)
        manifest = write_manifest(tmp, {"kind": "synthetic", "seed": int(seed), "params": cfg,
                                        "masks": "exact", "generator": "components.data.synthetic"})
    return manifest
