"""The two BING stages end to end, without MLflow (the CLI wraps them in stage runs).

``train_stage``: train split boxes -> :func:`train_bing` -> DR@k on the eval split (BING and
random boxes) -> ``<proposals.out>/`` (default ``pretrained/bing/``), written whole or not at all:

* ``model.json``: the model (JSON, no pickle) with its ``version`` hash;
* ``meta.json``: version, sizes (all / kept), training images and their hash, the DR@k table,
  train time, img/s;
* ``metrics.json``: the ``dvc metrics show`` row (``img_per_s``; the vocabulary of
  :mod:`components.common.dvc_metrics` has no DR column, so DR@k lives in meta.json);
* ``recall.png``: DR against the number of proposals, BING vs random.

``propose_stage``: ``<proposals.cache_dir>/<split>.npz`` per split
(:mod:`components.proposals.cache`), reusing entries whose image bytes and model version match.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2

from components.common.atomic import atomic_dir
from components.common.dvc_metrics import row
from components.common.env import project_relative
from components.data import layout
from components.data.manifest import sha256_file
from components.proposals.bing import load_model, save_model, train_bing
from components.proposals.cache import ProposalCacheError, load_proposals, update_cache
from components.proposals.config import check, model_kwargs, resolve_path
from components.proposals.data import LazyImages, read_split, records_hash
from components.proposals.recall import evaluate_recall, plot_recall

__all__ = ["train_stage", "propose_stage", "model_path"]


def _paths(params: Mapping[str, Any]) -> tuple[dict, Path, Path]:
    cfg = params["proposals"]
    check(cfg)
    if int(cfg["threads"]) > 0:
        cv2.setNumThreads(int(cfg["threads"]))
    root = resolve_path((params.get("data") or {}).get("out", "data/dataset"))
    return cfg, root, resolve_path(cfg["out"])


def model_path(params: Mapping[str, Any]) -> Path:
    return resolve_path(params["proposals"]["out"]) / "model.json"


def _finite(x: float) -> float | None:
    return round(x, 4) if isinstance(x, float) and math.isfinite(x) else None


def _dataset_hash(root: Path) -> str | None:
    try:
        return json.loads((root / layout.MANIFEST).read_text()).get("content_hash")
    except (OSError, ValueError):
        return None


def train_stage(params: Mapping[str, Any], *, progress: bool = True) -> dict[str, Any]:
    """Train BING on ``proposals.train_split``, evaluate on ``proposals.eval_split``, write
    ``proposals.out``. ``params``: the full params with the ``proposals`` section completed
    (:func:`components.proposals.config.with_defaults`). Returns meta.json's content."""
    start = time.perf_counter()
    cfg, root, out = _paths(params)
    seed = int(params.get("seed", 0))
    train = read_split(root, cfg["train_split"], int(cfg["max_train_images"]))
    if not train:
        raise ValueError(f"split {cfg['train_split']!r} of {root} has no images to train on")
    images = LazyImages(train)
    stages: dict[str, float] = {}
    model = train_bing(images, [r.boxes for r in train], ignore_boxes=[r.crowd for r in train],
                       seed=seed, progress=progress, on_stage=stages.__setitem__,
                       **model_kwargs(cfg))
    train_s = time.perf_counter() - start

    val = read_split(root, cfg["eval_split"], int(cfg["max_eval_images"]))
    ev = evaluate_recall(model, LazyImages(val), [r.boxes for r in val], ks=cfg["eval_k"],
                         seed=seed, progress=progress)
    img_per_s = ev["images"] / ev["propose_s"] if ev["propose_s"] > 0 else None
    sizes_seen = sorted({(r.width, r.height) for r in val})
    meta: dict[str, Any] = {
        "model": "model.json",
        "version": model.version,
        "sizes": list(model.sizes),
        "num_sizes": len(model.pairs),
        "kept_sizes": [f"{w}x{h}" for w, h in model.active_pairs],
        "num_kept_sizes": len(model.active_pairs),
        "training": {
            "split": cfg["train_split"], "images": len(train),
            "boxes": int(sum(len(r.boxes) for r in train)),
            "images_hash": records_hash(images.hashes),
            "annotations_sha256": sha256_file(layout.coco_json(root, cfg["train_split"])),
            "dataset_content_hash": _dataset_hash(root),
            "data_root": project_relative(root),
        },
        "evaluation": {
            "split": cfg["eval_split"], "images": ev["images"], "boxes": ev["boxes"],
            "image_sizes": [f"{w}x{h}" for w, h in sizes_seen[:5]],
            "dr": {name: {str(k): _finite(v) for k, v in table.items()}
                   for name, table in ev["dr"].items()},
            "iou": 0.5,
        },
        "seed": seed,
        "train_s": round(train_s, 3),
        "stage1_s": round(stages.get("stage1", 0.0), 3),
        "stage2_s": round(stages.get("stage2", 0.0), 3),
        "img_per_s": round(img_per_s, 1) if img_per_s else None,
        "ms_per_img": round(1000 / img_per_s, 3) if img_per_s else None,
        "threads": int(cfg["threads"]),
        "params": dict(cfg),
    }
    with atomic_dir(out) as tmp:
        save_model(model, tmp / "model.json")
        ks = ", ".join(f"DR@{k} {v:.2f}" for k, v in ev["dr"]["bing"].items() if math.isfinite(v))
        plot_recall({"BING": ev["curves"]["bing"], "random boxes": ev["curves"]["random"]},
                    tmp / "recall.png", title=f"{cfg['eval_split']}: {ks}")
        meta["wall_s"] = round(time.perf_counter() - start, 3)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        dr = meta["evaluation"]["dr"]["bing"]
        (tmp / "metrics.json").write_text(json.dumps(row(
            img_per_s=meta["img_per_s"], DR10=dr.get("10"), DR100=dr.get("100"),
            DR1000=dr.get("1000")), indent=2) + "\n")
    return meta


def propose_stage(params: Mapping[str, Any], splits: Sequence[str] | None = None, *,
                  progress: bool = True) -> dict[str, Any]:
    """Proposals of every image of ``splits`` (default ``proposals.splits``) into
    ``proposals.cache_dir``. All splits are computed before any file is replaced, so a failure
    (e.g. an unreadable image) leaves every cache file as it was. Returns
    ``{"version", "top_k", "splits": {split: {"images", "reused", "computed", "dropped", "path",
    "seconds"}}}``."""
    cfg, root, _ = _paths(params)
    model = load_model(model_path(params))
    cache_dir = resolve_path(cfg["cache_dir"])
    top_k = int(cfg["top_k"])
    done: dict[str, tuple] = {}
    for split in splits or cfg["splits"]:
        start = time.perf_counter()
        records = read_split(root, split)
        path = cache_dir / f"{split}.npz"
        old = None
        if path.is_file():
            try:
                old = load_proposals(path)
            except ProposalCacheError as exc:
                print(f"warning: {exc}; recomputing every entry", file=sys.stderr)

        def wrap(it, split=split, n=len(records)):
            if not progress:
                return it
            from tqdm import tqdm

            return tqdm(it, desc=f"BING proposals {split}", total=n, unit="img", leave=False)

        cache, counts = update_cache(model, records, top_k=top_k, images_root=layout.images_dir(root),
                                     old=old, wrap=wrap)
        done[split] = (cache, path, {**counts, "seconds": round(time.perf_counter() - start, 3)})
    summary: dict[str, Any] = {"version": model.version, "top_k": top_k, "splits": {}}
    for split, (cache, path, counts) in done.items():
        cache.save(path)
        summary["splits"][split] = {**counts, "path": project_relative(path)}
    return summary
