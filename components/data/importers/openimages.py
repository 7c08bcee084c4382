"""Import an OpenImages V6/V7 subset (CSV annotations + ``<ImageID>.jpg`` folder).

Boxes are converted to our internal COCO JSON: normalised coordinates times the real image
size (read from the image header), ``IsGroupOf`` -> ``iscrowd``. OpenImages has no instance
masks here, and an empty segmentation would break a mask head, so each box is written as a
4-point polygon and the manifest records ``masks: box-derived`` (mask metrics on such data
measure box-filling, not shape). The CSVs are kept under ``openimages/`` for validation and
lineage.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from components.common.atomic import atomic_dir
from components.data import layout
from components.data.formats import (DataFormatError, box_polygon, read_csv, read_oi_classes, write_coco,
                                     write_oi_classes)
from components.data.importers._common import (PathLike, copy_image, image_dirs, lineage, safe_source,
                                               split_map)
from components.data.manifest import write_manifest

__all__ = ["import_openimages", "BBOX_REQUIRED", "LABELS_REQUIRED"]

BBOX_REQUIRED = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
LABELS_REQUIRED = ("ImageID", "LabelName", "Confidence")


def _categories(classes: list[tuple[str, str]], used: set[str]) -> list[dict]:
    """COCO categories for the labels that have boxes, in class-file order, ids from 1."""
    cats, names, done = [], set(), set()
    for label, display in classes:
        if label not in used or label in done:
            continue
        name = display if display not in names else f"{display} ({label})"
        names.add(name)
        done.add(label)
        cats.append({"id": len(cats) + 1, "name": name, "supercategory": "openimages", "label_name": label})
    return cats


def _image_size(path: Path, where: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataFormatError(f"{where}: image file {path} not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataFormatError(f"{where}: cannot read image {path} ({err})") from None


def import_openimages(out: PathLike, classes: PathLike, bbox: Mapping[str, PathLike],
                      images: Mapping[str, PathLike] | PathLike, labels: Mapping[str, PathLike] | None = None,
                      *, progress: bool = False) -> dict:
    """Convert an OpenImages subset into the layout at ``out`` (atomically); return the manifest.

    Args:
        classes: class-descriptions CSV (``LabelName,DisplayName``, header optional).
        bbox: ``{split: *-annotations-bbox.csv}``.
        images: ``{split: folder with <ImageID>.jpg}`` (or one folder for every split).
        labels: optional ``{split: *-annotations-human-imagelabels.csv}``.
    """
    if not str(classes):
        raise DataFormatError("data.openimages.classes is empty: give the class-descriptions CSV")
    bbox_files = split_map(bbox, "data.openimages.bbox")
    if not bbox_files:
        raise DataFormatError("data.openimages.bbox is empty: give split -> *-annotations-bbox.csv")
    label_files = split_map(labels, "data.openimages.labels")
    extra = set(label_files) - set(bbox_files)
    if extra:
        raise DataFormatError(f"data.openimages.labels: split(s) {sorted(extra)} have no bbox CSV")
    dirs = image_dirs(images, list(bbox_files), "data.openimages.images")
    class_rows = read_oi_classes(classes)
    known = {label for label, _ in class_rows}

    boxes = {s: read_csv(p, BBOX_REQUIRED) for s, p in bbox_files.items()}
    image_labels = {s: read_csv(p, LABELS_REQUIRED) for s, p in label_files.items()}
    used: set[str] = set()
    for split, rows in boxes.items():
        for line, row in enumerate(rows, start=2):
            if row["LabelName"] not in known:
                raise DataFormatError(f"{bbox_files[split]}:{line}: LabelName {row['LabelName']!r} is not in {classes}")
            used.add(row["LabelName"])
    cats = _categories(class_rows, used)
    cat_id = {c["label_name"]: c["id"] for c in cats}

    with atomic_dir(out) as tmp:
        for split, rows in boxes.items():
            ids = sorted({r["ImageID"] for r in rows} | {r["ImageID"] for r in image_labels.get(split, [])})
            coco_images, sizes = [], {}
            for image_id, key in enumerate(tqdm(ids, desc=f"openimages {split}", unit="img", disable=not progress),
                                           start=1):
                where = f"{bbox_files[split]}: ImageID {key!r}"
                src, _ = safe_source(dirs[split], f"{key}.jpg", where)
                w, h = _image_size(src, where)
                copy_image(src, layout.images_dir(tmp) / split / f"{key}.jpg", where)
                sizes[key] = (image_id, w, h)
                coco_images.append({"id": image_id, "file_name": f"{split}/{key}.jpg", "width": w, "height": h})
            anns = []
            for line, row in enumerate(rows, start=2):
                image_id, w, h = sizes[row["ImageID"]]
                try:
                    x0, x1 = float(row["XMin"]) * w, float(row["XMax"]) * w
                    y0, y1 = float(row["YMin"]) * h, float(row["YMax"]) * h
                except ValueError as err:
                    raise DataFormatError(
                        f"{bbox_files[split]}:{line}: box coordinate is not a number ({err})") from None
                bw, bh = x1 - x0, y1 - y0
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[row["LabelName"]],
                             "bbox": [x0, y0, bw, bh], "area": bw * bh, "segmentation": box_polygon(x0, y0, bw, bh),
                             "iscrowd": int(str(row.get("IsGroupOf", "0")).strip() == "1")})
            write_coco(layout.coco_json(tmp, split), coco_images, anns, cats,
                       {"description": f"OpenImages import, split {split}", "source": str(bbox_files[split])})
            layout.oi_bbox_csv(tmp, split).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bbox_files[split], layout.oi_bbox_csv(tmp, split))
            if split in label_files:
                shutil.copyfile(label_files[split], layout.oi_labels_csv(tmp, split))
        write_oi_classes(layout.oi_classes_csv(tmp), class_rows)
        manifest = write_manifest(tmp, lineage("openimages", "box-derived", classes=classes, bbox=bbox_files,
                                                labels=label_files, images=dirs))
    return manifest
