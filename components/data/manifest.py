"""``manifest.json``: what a dataset folder holds, where it came from, and one content hash.

Why: validation, training and MLflow need counts and lineage without re-reading every
annotation, and a single ``content_hash`` that changes whenever any image or label file
changes (and only then) identifies the exact data a model was trained on. The manifest
itself carries no timestamps, so regenerating the same data gives the same bytes.

Shape::

    {"schema_version": 1,
     "source": {"kind": "synthetic" | "coco" | "openimages" | "imagetext", ...,
                "masks": "exact" | "as-given" | "box-derived" | "none"},
     "splits": {"train": {"images": int, "annotations": int, "crowd": int,
                          "classes": {name: count}, "captions": int}, ...},
     "captions": {split: int}, "unlabeled": int,
     "files": {"images/train/000001.jpg": sha256, ...},
     "label_files": {"annotations/instances_train.json": sha256, ...},
     "content_hash": sha256}
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from components.common.atomic import write_json_atomic
from components.data import layout
from components.data.formats import DataFormatError, read_captions, read_coco

__all__ = ["write_manifest", "read_manifest", "sha256_file", "dataset_stats", "content_hash"]

_CHUNK = 1 << 20
_LABEL_DIRS = (layout.ANNOTATIONS, layout.OPENIMAGES, layout.CAPTIONS)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_tree(root: Path, sub: str) -> dict[str, str]:
    base = root / sub
    if not base.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(base.rglob("*")) if p.is_file()}


def content_hash(files: Mapping[str, str], label_files: Mapping[str, str]) -> str:
    """sha256 over the sorted ``{path: sha256}`` maps of images and label files."""
    blob = json.dumps({"files": dict(files), "label_files": dict(label_files)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _split_names(root: Path) -> list[str]:
    names = set()
    ann = root / layout.ANNOTATIONS
    if ann.is_dir():
        names |= {p.stem[len("instances_"):] for p in ann.glob("instances_*.json")}
    cap = root / layout.CAPTIONS
    if cap.is_dir():
        names |= {p.stem for p in cap.glob("*.jsonl")}
    img = layout.images_dir(root)
    if img.is_dir():
        names |= {p.name for p in img.iterdir() if p.is_dir() and p.name != layout.UNLABELED}
    order = {s: i for i, s in enumerate(layout.SPLITS)}
    return sorted(names, key=lambda s: (order.get(s, len(order)), s))


def _count_files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def dataset_stats(root: str | Path) -> dict[str, Any]:
    """Per-split counts read from the label files (images counted on disk if no COCO JSON)."""
    root = Path(root)
    splits: dict[str, dict] = {}
    captions: dict[str, int] = {}
    for split in _split_names(root):
        stats: dict[str, Any] = {"images": 0, "annotations": 0, "crowd": 0, "classes": {}}
        coco_path = layout.coco_json(root, split)
        if coco_path.is_file():
            coco = read_coco(coco_path)
            names = {c["id"]: c["name"] for c in coco["categories"]}
            per_class: Counter[str] = Counter({n: 0 for n in names.values()})
            crowd = 0
            for ann in coco["annotations"]:
                if ann.get("iscrowd", 0):
                    crowd += 1
                else:
                    per_class[names.get(ann["category_id"], f"<unknown id {ann['category_id']}>")] += 1
            stats.update(images=len(coco["images"]), annotations=len(coco["annotations"]),
                         crowd=crowd, classes=dict(sorted(per_class.items())))
        else:
            stats["images"] = _count_files(layout.images_dir(root) / split)
        cap_path = layout.captions_jsonl(root, split)
        if cap_path.is_file():
            captions[split] = len(read_captions(cap_path))
        stats["captions"] = captions.get(split, 0)
        splits[split] = stats
    return {"splits": splits, "captions": captions,
            "unlabeled": _count_files(layout.images_dir(root) / layout.UNLABELED)}


def write_manifest(root: str | Path, source: Mapping[str, Any]) -> dict:
    """Compute and write ``<root>/manifest.json``; return it.

    ``source`` records lineage: ``kind`` plus the params or source paths, and ``masks``
    (how trustworthy instance masks are). It must be JSON-serialisable.
    """
    root = Path(root)
    if "kind" not in source:
        raise ValueError("manifest source needs a 'kind' (synthetic/coco/openimages/imagetext)")
    files = _hash_tree(root, layout.IMAGES)
    label_files: dict[str, str] = {}
    for sub in _LABEL_DIRS:
        label_files.update(_hash_tree(root, sub))
    manifest = {
        "schema_version": layout.SCHEMA_VERSION,
        "source": json.loads(json.dumps(dict(source), default=str)),
        **dataset_stats(root),
        "files": files,
        "label_files": label_files,
        "content_hash": content_hash(files, label_files),
    }
    write_json_atomic(root / layout.MANIFEST, manifest)
    return manifest


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / layout.MANIFEST
    if not path.is_file():
        raise DataFormatError(
            f"{path}: no manifest (not a dataset folder?). Build one with "
            "`python -m components.data prepare --params params.yaml`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err}); rebuild the dataset") from None
    if manifest.get("schema_version") != layout.SCHEMA_VERSION:
        raise DataFormatError(
            f"{path}: schema_version {manifest.get('schema_version')!r}, this code reads "
            f"{layout.SCHEMA_VERSION}; rebuild the dataset with this version")
    return manifest
