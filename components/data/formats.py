"""Readers and writers for the on-disk formats in :mod:`components.data.layout`.

Why one module: the synthetic generator and every importer write the same COCO JSON,
OpenImages CSVs and caption JSONL, and later stages read them back. Keeping the encoding
(compact sorted JSON, CSV headers, RLE ``counts`` as ``str``, polygon convention) in one
place means the files are byte-identical whoever wrote them.

Readers fail with :class:`DataFormatError`, whose message names the file, the record and
the rule, so a user knows what to fix. They do not validate deeply: that is the job of the
validation stage.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    "DataFormatError",
    "read_json", "write_json", "read_coco", "write_coco",
    "mask_to_polygons", "mask_to_rle", "box_polygon",
    "read_csv", "write_csv", "read_oi_classes", "write_oi_classes",
    "read_jsonl", "write_jsonl", "read_captions", "write_captions",
]


class DataFormatError(ValueError):
    """An input file is unreadable or lacks a required field/column."""


# ----------------------------------------------------------------------------- JSON / COCO
def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None


def write_json(path: str | Path, obj: Any) -> None:
    """Compact, key-sorted JSON: deterministic bytes for DVC and the manifest hash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # json.dumps (not json.dump) so the C encoder runs: ~8x faster on polygon-heavy files.
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def read_coco(path: str | Path) -> dict:
    """Load a COCO instances file; ``images`` and ``categories`` lists are required.

    A missing ``annotations`` key is read as ``[]`` (e.g. COCO test-dev image-info files).
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: COCO instances JSON must be an object, got {type(data).__name__}")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataFormatError(f"{path}: COCO instances JSON needs a list {key!r} (top-level key missing)")
    data.setdefault("annotations", [])
    if not isinstance(data["annotations"], list):
        raise DataFormatError(f"{path}: 'annotations' must be a list")
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise DataFormatError(f"{path}: images[{i}] needs 'id' and 'file_name' (got {img!r:.200})")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
            raise DataFormatError(
                f"{path}: annotations[{i}] needs 'image_id' and 'category_id' (got {ann!r:.200})")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DataFormatError(f"{path}: categories[{i}] needs 'id' and 'name' (got {cat!r:.200})")
    return data


def write_coco(path: str | Path, images: list[dict], annotations: list[dict],
               categories: list[dict], info: Mapping[str, Any] | None = None) -> None:
    write_json(path, {
        "info": dict(info or {}),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    })


def mask_to_polygons(mask: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> list[list[float]]:
    """Binary mask (H, W) -> COCO polygons that pycocotools rasterises back to the same pixels.

    COCO polygon coordinates are pixel *edges* (pixel ``i`` spans ``[i, i+1]``), while
    ``cv2.findContours`` returns pixel *centres*: used as-is they lose half a pixel all round
    (~15% IoU on small objects). Tracing the 2x nearest-upsampled mask and mapping
    ``u -> (u + 0.5) / 2`` puts every vertex a quarter pixel inside the true edge, which
    pycocotools' rounding turns into the exact pixel set. Holes (e.g. a ring) are spliced
    into their outer contour through a zero-width "keyhole" cut, since COCO polygons have no
    holes. Parts with fewer than 3 points are dropped; all other parts are kept.
    ``offset`` (x, y) is added to every vertex (for masks cut from a larger image).
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return []
    up = cv2.resize(m, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    hierarchy = hierarchy[0]
    ox, oy = offset
    polygons = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: spliced into its parent below
            continue
        outer = contour.reshape(-1, 2)
        child = hierarchy[i][2]
        while child != -1:
            hole = contours[child].reshape(-1, 2)
            if len(hole) >= 3:
                d2 = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(-1)
                a, b = np.unravel_index(int(d2.argmin()), d2.shape)
                outer = np.concatenate([outer[:a + 1], hole[b:], hole[:b + 1], outer[a:]])
            child = hierarchy[child][0]
        if len(outer) < 3:
            continue
        pts = (outer.astype(np.float64) + 0.5) / 2.0 + (ox, oy)
        polygons.append(pts.ravel().tolist())
    return polygons


def mask_to_rle(mask: np.ndarray) -> dict:
    """Binary mask (H, W) -> compressed COCO RLE ``{"size": [h, w], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def box_polygon(x: float, y: float, w: float, h: float) -> list[list[float]]:
    """A COCO box ``[x, y, w, h]`` as a one-part polygon (used when only boxes are known)."""
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


# ----------------------------------------------------------------------------- CSV
def read_csv(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a headered CSV as dicts; fails if a ``required`` column is missing."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DataFormatError(
                    f"{path}: missing required column(s) {missing}; header is {header} "
                    f"(expected at least {list(required)})")
            return list(reader)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: file not found") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a readable CSV ({err})") from None


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns] if isinstance(row, Mapping) else row)


def read_oi_classes(path: str | Path) -> list[tuple[str, str]]:
    """OpenImages class descriptions as ``[(LabelName, DisplayName)]``.

    V6 ships them headerless, V7 with a ``LabelName,DisplayName`` header: both are read.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except FileNotFoundError:
        raise DataFormatError(f"{path}: file not found") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: not a readable CSV ({err})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["labelname", "displayname"]:
        rows = rows[1:]
    out = []
    for line, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise DataFormatError(f"{path}: row {line} {row!r} needs two columns LabelName,DisplayName")
        out.append((row[0].strip(), row[1].strip()))
    return out


def write_oi_classes(path: str | Path, classes: Iterable[tuple[str, str]]) -> None:
    write_csv(path, ("LabelName", "DisplayName"), classes)


# ----------------------------------------------------------------------------- JSONL / captions
def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataFormatError(f"{path}:{line_no}: not valid JSON ({err})") from None
                if not isinstance(rec, dict):
                    raise DataFormatError(f"{path}:{line_no}: each line must be a JSON object")
                records.append(rec)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not UTF-8 text ({err})") from None
    return records


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")


def read_captions(path: str | Path) -> list[dict]:
    """Caption records ``{"image": str, "caption": str}`` from ``captions/<split>.jsonl``."""
    records = read_jsonl(path)
    for i, rec in enumerate(records, start=1):
        if "image" not in rec or "caption" not in rec:
            raise DataFormatError(f"{path}: record {i} needs keys 'image' and 'caption' (got {sorted(rec)})")
    return records


def write_captions(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_jsonl(path, ({"image": r["image"], "caption": r["caption"]} for r in records))
