"""Flatten dataset files into pandas DataFrames, with per-row structural checks as columns.

Why plain Python first: GX expectations work on columns of a table, but a COCO file is nested
JSON whose records may have missing keys or strings where numbers belong. Each loader here
walks the records once, turns every structural problem into a boolean column (``schema_ok``)
plus a ``<col>__why`` text column naming the key, and computes the geometric checks
(bbox/polygon inside the image, RLE size) with numpy. The suites then feed these columns to GX,
so every rule ends up in one GX validation result per table.

Every frame has ``file`` (relative to the dataset root), ``record`` (``image id=3``,
``line 7``) and ``_row`` (position, set by :func:`concat`). Rule columns hold True/False, or
None where the rule does not apply (GX map expectations skip nulls), e.g. a bbox is not
checked against an image that does not exist; that is reported by its own rule instead.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from components.data import layout
from components.data.masks import polygon_area, rle_foreground, rle_problem
from components.validation.result import Failure

OI_REQUIRED_BBOX = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
OI_REQUIRED_LABELS = ("ImageID", "LabelName")
OI_COORDS = ("XMin", "XMax", "YMin", "YMax")


@dataclass
class Frames:
    """Tables built from one format's files, plus file-level problems found on the way."""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


def rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def concat(frames: Iterable[pd.DataFrame], columns: Iterable[str]) -> pd.DataFrame:
    """Stack per-file frames (empty input gives an empty frame with ``columns``)."""
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in columns})
    df.insert(0, "_row", np.arange(len(df)))
    return df


# ---------------------------------------------------------------------------- small helpers
_NUM_TYPES = frozenset((int, float))


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def all_numbers(values: list) -> bool:
    """Every item is an int or float (not bool, not a numeric string). Fast on long lists."""
    return set(map(type, values)) <= _NUM_TYPES


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def show(v: Any, limit: int = 40) -> str:
    """Short JSON-ish rendering of a value for messages."""
    if isinstance(v, np.generic):
        v = v.item()
    try:
        text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else repr(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def objects(values: Iterable[Any]) -> pd.Series:
    """A column of Python objects (bool/int/None kept as they are, for GX)."""
    return pd.Series(list(values), dtype=object)


_KIND_TEST = {"int": is_int, "number": is_num, "string": lambda x: isinstance(x, str),
              "name": lambda x: isinstance(x, str) and x.strip() != ""}
_KIND_TEXT = {"int": "an integer", "number": "a number", "string": "a string",
              "name": "a non-empty string"}


class KeyCheck:
    """Collects 'key X missing / wrong type' messages for one record."""

    def __init__(self, rec: dict) -> None:
        self.rec, self.errors = rec, []

    def get(self, key: str, kind: str, required: bool = True) -> Any:
        """Return the value if it has JSON type ``kind`` (int|number|string|str-nonempty)."""
        if key not in self.rec:
            if required:
                self.errors.append(f"key '{key}' missing")
            return None
        v = self.rec[key]
        if not _KIND_TEST[kind](v):
            self.errors.append(
                f"key '{key}' must be {_KIND_TEXT[kind]}, got {json_type(v)} {show(v)}")
            return None
        return v


# ---------------------------------------------------------------------------- COCO
def read_json(path: Path, file: str) -> tuple[Any, Failure | None]:
    try:
        return json.loads(path.read_bytes().decode("utf-8")), None
    except UnicodeDecodeError as err:
        return None, Failure(file, f"byte {err.start}", f"invalid JSON: not UTF-8 ({err.reason})")
    except json.JSONDecodeError as err:
        return None, Failure(file, f"line {err.lineno}",
                             f"invalid JSON: {err.msg} (line {err.lineno} column {err.colno})")
    except OSError as err:
        return None, Failure(file, "-", f"cannot read file: {err.strerror}")


def coco_frames(root: Path, paths: list[Path], tolerance: float) -> Frames:
    """``images``, ``annotations`` and ``categories`` tables over all COCO files."""
    out = Frames()
    parts: dict[str, list[pd.DataFrame]] = {"images": [], "annotations": [], "categories": []}
    for path in paths:
        file = rel(root, path)
        data, bad = read_json(path, file)
        if bad is None:
            bad = _coco_top_level(data, file)
        if bad is not None:
            out.failures.append(bad)
            continue
        images = _coco_images(data["images"], file)
        cats = _coco_categories(data["categories"], file)
        anns = _coco_annotations(data["annotations"], file, images, cats, tolerance)
        for key, empty in (("images", images), ("categories", cats)):
            if not len(empty):
                out.failures.append(Failure(file, "-", f"COCO file has no {key}"))
        parts["images"].append(images)
        parts["annotations"].append(anns)
        parts["categories"].append(cats)
    out.tables = {k: concat(v, ["file", "record"]) for k, v in parts.items()}
    return out


def _coco_top_level(data: Any, file: str) -> Failure | None:
    if not isinstance(data, dict):
        return Failure(file, "top level", f"COCO JSON must be an object, got {json_type(data)}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            return Failure(file, "top level", f"COCO key '{key}' missing")
        if not isinstance(data[key], list):
            return Failure(file, "top level",
                           f"COCO key '{key}' must be an array, got {json_type(data[key])}")
    return None


def _record_label(kind: str, idx: int, rec: Any) -> str:
    rid = rec.get("id") if isinstance(rec, dict) else None
    return f"{kind} id={rid}" if is_int(rid) else f"{kind}s[{idx}]"


def _coco_images(records: list, file: str) -> pd.DataFrame:
    cols: dict[str, list] = {k: [] for k in (
        "record", "id", "file_name", "width", "height", "schema_ok", "schema__why")}
    for i, rec in enumerate(records):
        cols["record"].append(_record_label("image", i, rec))
        if not isinstance(rec, dict):
            vals = [None] * 4
            errors = [f"image record must be an object, got {json_type(rec)}"]
        else:
            kc = KeyCheck(rec)
            vals = [kc.get("id", "int"), kc.get("file_name", "name"), kc.get("width", "int"),
                    kc.get("height", "int")]
            errors = kc.errors
        for key, v in zip(("id", "file_name", "width", "height"), vals):
            cols[key].append(v)
        cols["schema_ok"].append(not errors)
        cols["schema__why"].append("; ".join(errors) or None)
    df = pd.DataFrame({k: objects(v) for k, v in cols.items()})
    df.insert(0, "file", file)
    return df


def _coco_categories(records: list, file: str) -> pd.DataFrame:
    cols: dict[str, list] = {k: [] for k in ("record", "id", "name", "schema_ok", "schema__why")}
    for i, rec in enumerate(records):
        cols["record"].append(_record_label("category", i, rec))
        if not isinstance(rec, dict):
            vals = [None, None]
            errors = [f"category record must be an object, got {json_type(rec)}"]
        else:
            kc = KeyCheck(rec)
            vals = [kc.get("id", "int"), kc.get("name", "name")]
            errors = kc.errors
        cols["id"].append(vals[0])
        cols["name"].append(vals[1])
        cols["schema_ok"].append(not errors)
        cols["schema__why"].append("; ".join(errors) or None)
    df = pd.DataFrame({k: objects(v) for k, v in cols.items()})
    df.insert(0, "file", file)
    return df


def _parse_segmentation(seg: Any, errors: list[str]) -> tuple[str | None, Any]:
    """-> (kind, payload): ('polygon', rings) | ('rle', (size, counts)) | ('empty', None) for
    ``[]`` | (None, None) when it cannot be read (the errors say why)."""
    if isinstance(seg, list):
        if not seg:
            return "empty", None                   # box only: trained without a mask
        for k, ring in enumerate(seg):
            if not isinstance(ring, list) or not all_numbers(ring):
                errors.append(f"key 'segmentation' polygon {k} must be an array of numbers")
                return None, None
        return "polygon", seg
    if isinstance(seg, dict):
        counts, size = seg.get("counts"), seg.get("size")
        if not (isinstance(counts, str) or (
                isinstance(counts, list) and all(is_int(c) for c in counts))):
            errors.append("key 'segmentation' RLE 'counts' must be a string or an array of "
                          f"integers, got {json_type(counts)}")
        if not (isinstance(size, list) and len(size) == 2 and all(is_int(s) for s in size)):
            errors.append(f"key 'segmentation' RLE 'size' must be [height, width] integers, "
                          f"got {show(size)}")
            return None, None
        if errors:
            return None, None
        return "rle", (size, counts)
    errors.append("key 'segmentation' must be a polygon array or an RLE object, got "
                  f"{json_type(seg)}")
    return None, None


def _coco_annotations(records: list, file: str, images: pd.DataFrame, cats: pd.DataFrame,
                      tol: float) -> pd.DataFrame:
    n = len(records)
    record, ids, image_ids, cat_ids, iscrowd, schema_ok, schema_why = ([] for _ in range(7))
    bbox = np.full((n, 4), np.nan)
    parsed = np.zeros(n, dtype=bool)            # bbox present with 4 numbers
    area = np.full(n, np.nan)
    seg_kind: list[str | None] = []
    seg_data: list[Any] = []
    for i, rec in enumerate(records):
        record.append(_record_label("annotation", i, rec))
        errors: list[str] = []
        if not isinstance(rec, dict):
            errors.append(f"annotation record must be an object, got {json_type(rec)}")
            vals, kind, payload = [None] * 4, None, None
        else:
            kc = KeyCheck(rec)
            vals = [kc.get("id", "int"), kc.get("image_id", "int"), kc.get("category_id", "int"),
                    kc.get("iscrowd", "int")]
            a = kc.get("area", "number")
            if a is not None:
                area[i] = a
            errors = kc.errors
            b = rec.get("bbox")
            if "bbox" not in rec:
                errors.append("key 'bbox' missing")
            elif not (isinstance(b, list) and len(b) == 4 and all_numbers(b)):
                errors.append(f"key 'bbox' must be an array of 4 numbers [x, y, w, h], got "
                              f"{show(b)}")
            else:
                bbox[i] = b
                parsed[i] = True
            kind, payload = (_parse_segmentation(rec["segmentation"], errors)
                             if "segmentation" in rec else (None, None))
        for col, v in zip((ids, image_ids, cat_ids, iscrowd), vals):
            col.append(v)
        seg_kind.append(kind)
        seg_data.append(payload)
        schema_ok.append(not errors)
        schema_why.append("; ".join(errors) or None)

    df = pd.DataFrame({
        "file": file, "record": objects(record), "id": objects(ids),
        "image_id": objects(image_ids), "category_id": objects(cat_ids),
        "bbox_x": bbox[:, 0], "bbox_y": bbox[:, 1], "bbox_w": bbox[:, 2], "bbox_h": bbox[:, 3],
        "area": area, "iscrowd": objects(iscrowd),
        "schema_ok": objects(schema_ok), "schema__why": objects(schema_why)})

    # foreign keys (within this file)
    image_known = set(images["id"].dropna())
    cat_known = set(cats["id"].dropna())
    df["image_exists"] = objects(None if v is None else v in image_known for v in image_ids)
    df["image_exists__why"] = objects(
        None if v is None or v in image_known else f"no image with id {v}" for v in image_ids)
    df["category_exists"] = objects(None if v is None else v in cat_known for v in cat_ids)
    df["category_exists__why"] = objects(
        None if v is None or v in cat_known else f"no category with id {v}" for v in cat_ids)

    # image size per annotation, from the image record (the file's size is checked separately)
    dims = {}
    for iid, w, h in zip(images["id"], images["width"], images["height"]):
        if iid is not None and w is not None and h is not None:
            dims.setdefault(iid, (w, h))
    wh = np.array([dims.get(v, (np.nan, np.nan)) for v in image_ids], dtype=float).reshape(n, 2)
    W, H = wh[:, 0], wh[:, 1]
    has_dims = np.isfinite(W)

    finite = np.isfinite(bbox).all(axis=1)
    df["bbox_finite"] = _tri(finite, parsed)
    df["bbox__why"] = _why(~finite & parsed, lambda i: f"bbox {show(bbox[i].tolist(), 80)} "
                           "has a non-finite value (NaN/Infinity)")
    x, y, w, h = bbox.T
    with np.errstate(invalid="ignore"):
        inside = (x >= -tol) & (y >= -tol) & (x + w <= W + tol) & (y + h <= H + tol)
    evaluated = parsed & finite & has_dims
    df["bbox_in_image"] = _tri(inside, evaluated)
    df["bbox_in_image__why"] = _why(~inside & evaluated, lambda i: (
        f"bbox [x, y, w, h] = {show(bbox[i].tolist(), 80)} is outside its image "
        f"{int(W[i])}x{int(H[i])} (tolerance {tol:g} px)"))
    df.loc[~finite, ["bbox_w", "bbox_h"]] = np.nan      # reported by bbox_finite instead

    _polygon_columns(df, seg_kind, seg_data, W, H, has_dims, tol)
    _rle_columns(df, seg_kind, seg_data, W, H, has_dims)
    _mask_missing_column(df, seg_kind, seg_data, iscrowd)
    return df


def _tri(values: np.ndarray, evaluated: np.ndarray) -> pd.Series:
    """Boolean rule column: value where evaluated, None elsewhere."""
    return objects(bool(v) if e else None for v, e in zip(values, evaluated))


def _why(mask: np.ndarray, make) -> pd.Series:
    """Explanation column: ``make(i)`` where ``mask`` is True, None elsewhere."""
    out = np.full(len(mask), None, dtype=object)
    for i in np.flatnonzero(mask):
        out[i] = make(int(i))
    return pd.Series(out, dtype=object)


def _polygon_columns(df: pd.DataFrame, kinds: list, data: list, W: np.ndarray, H: np.ndarray,
                     has_dims: np.ndarray, tol: float) -> None:
    n = len(kinds)
    is_poly = np.array([k == "polygon" for k in kinds])
    rings_ok = np.ones(n, dtype=bool)
    bad_ring: dict[int, str] = {}
    coords: list[float] = []
    owner: list[int] = []
    counts: list[int] = []
    for i in np.flatnonzero(is_poly):
        for k, ring in enumerate(data[i]):
            if len(ring) < 6 or len(ring) % 2:
                rings_ok[i] = False
                bad_ring[i] = (f"polygon {k} has {len(ring)} numbers; a ring needs an even "
                               "count >= 6 (at least 3 points)")
                break
        if rings_ok[i] and has_dims[i]:
            for ring in data[i]:
                coords.extend(ring)
                owner.append(i)
                counts.append(len(ring) // 2)
    df["polygon_rings_ok"] = _tri(rings_ok, is_poly)
    df["polygon_rings_ok__why"] = _why(is_poly & ~rings_ok, lambda i: bad_ring[i])
    outside = np.zeros(n, dtype=bool)
    if coords:
        pts = np.asarray(coords, dtype=float).reshape(-1, 2)
        who = np.repeat(np.asarray(owner), counts)
        with np.errstate(invalid="ignore"):
            ok = ((pts[:, 0] >= -tol) & (pts[:, 0] <= W[who] + tol)
                  & (pts[:, 1] >= -tol) & (pts[:, 1] <= H[who] + tol))
        outside[np.unique(who[~ok])] = True
    evaluated = is_poly & rings_ok & has_dims
    df["polygon_in_image"] = _tri(~outside, evaluated)
    df["polygon_in_image__why"] = _why(outside, lambda i: (
        f"a polygon point is outside its image {int(W[i])}x{int(H[i])} (tolerance {tol:g} px) "
        "or not finite"))


def _rle_columns(df: pd.DataFrame, kinds: list, data: list, W: np.ndarray, H: np.ndarray,
                 has_dims: np.ndarray) -> None:
    """``rle_size_ok`` (size = the image's) and ``rle_counts_ok`` (the runs fill the mask
    exactly): a corrupt RLE would silently train a wrong mask, so both are failures."""
    n = len(kinds)
    is_rle = np.array([k == "rle" for k in kinds]) & has_dims
    match = np.ones(n, dtype=bool)
    counts_ok = np.ones(n, dtype=bool)
    problem: dict[int, str] = {}
    for i in np.flatnonzero(is_rle):
        size, counts = data[i]
        match[i] = list(size) == [H[i], W[i]]
        if match[i]:
            problem_i = rle_problem(counts, int(size[0]), int(size[1]))
            if problem_i:
                counts_ok[i] = False
                problem[i] = problem_i
    df["rle_size_ok"] = _tri(match, is_rle)
    df["rle_size_ok__why"] = _why(is_rle & ~match, lambda i: (
        f"got size {data[i][0]}, the image's [height, width] is [{int(H[i])}, {int(W[i])}]"))
    checked = is_rle & match
    df["rle_counts_ok"] = _tri(counts_ok, checked)
    df["rle_counts_ok__why"] = _why(checked & ~counts_ok, lambda i: problem[i])


def _mask_missing_column(df: pd.DataFrame, kinds: list, data: list, iscrowd: list) -> None:
    """``mask_missing`` (a warning, not a failure): an instance with no usable mask (no or an
    empty ``segmentation``, zero-area polygons, an all-background RLE) trains its box only."""
    missing: list[bool | None] = []
    why: list[str | None] = []
    for kind, payload, crowd in zip(kinds, data, iscrowd):
        reason = None
        if kind in (None, "empty"):
            reason = "no segmentation" if kind is None else "segmentation is []"
        elif kind == "polygon" and polygon_area(payload) < 0.5:
            reason = "polygons enclose no area"
        elif kind == "rle" and rle_problem(payload[1], *map(int, payload[0])) is None \
                and rle_foreground(payload[1]) == 0:
            reason = "RLE has no foreground pixel"
        missing.append(reason is not None)
        why.append(None if reason is None else
                   f"{reason}: {'the crowd region is its box' if crowd == 1 else 'its box is trained and evaluated, its mask is not'}")
    df["mask_missing"] = objects(missing)
    df["mask_missing__why"] = objects(why)


# ---------------------------------------------------------------------------- OpenImages
def _read_csv(path: Path, file: str, required: tuple[str, ...]) -> tuple[pd.DataFrame | None,
                                                                         Failure | None]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        return None, Failure(file, f"byte {err.start}", f"CSV is not valid UTF-8 ({err.reason})")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        return None, Failure(file, "-", f"unreadable CSV: {str(err).strip()}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        return None, Failure(file, "line 1", f"CSV column(s) {', '.join(missing)} missing "
                                             f"(header has {', '.join(df.columns)})")
    df = df.astype(object)
    df.insert(0, "record", [f"line {i + 2}" for i in range(len(df))])
    df.insert(0, "file", file)
    return df, None


def oi_classes(root: Path) -> tuple[pd.DataFrame | None, Failure | None]:
    """``class-descriptions.csv``: ``LabelName,DisplayName``, header optional (OI ships none)."""
    path = layout.oi_classes_csv(root)
    file = rel(root, path)
    if not path.exists():
        return None, Failure(file, "-", "class descriptions file missing (needed to check "
                                        "LabelName in the OpenImages CSVs)")
    try:
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as err:
        return None, Failure(file, "-", f"unreadable CSV: {err}")
    start = 1 if rows and rows[0][:1] == ["LabelName"] else 0
    recs = [(f"line {i + 1}", r[0] if r and r[0].strip() else None,
             r[1] if len(r) > 1 else None) for i, r in enumerate(rows) if i >= start and r]
    df = pd.DataFrame({"record": objects(r[0] for r in recs),
                       "LabelName": objects(r[1] for r in recs),
                       "DisplayName": objects(r[2] for r in recs)})
    df.insert(0, "file", file)
    return df, None


def oi_frames(root: Path, bbox_paths: list[Path], label_paths: list[Path]) -> Frames:
    """``classes``, ``boxes`` and ``labels`` tables; coordinates parsed as floats."""
    out = Frames()
    classes, bad = oi_classes(root)
    if bad:
        out.failures.append(bad)
        known: set = set()
    else:
        known = set(classes["LabelName"].dropna())
    boxes, labels = [], []
    for paths, required, sink, numeric in (
            (bbox_paths, OI_REQUIRED_BBOX, boxes, OI_COORDS),
            (label_paths, OI_REQUIRED_LABELS, labels, ())):
        for path in paths:
            file = rel(root, path)
            df, bad = _read_csv(path, file, required)
            if bad:
                out.failures.append(bad)
                continue
            split = path.name.split("-annotations-")[0]
            _oi_numeric(df, numeric + (("Confidence",) if "Confidence" in df.columns else ()))
            df["image"] = objects(f"{split}/{i}.jpg" for i in df["ImageID"])
            df["label_known"] = objects(
                (v in known) if classes is not None else None for v in df["LabelName"])
            df["label_known__why"] = objects(
                f"LabelName {show(v)} is not in {rel(root, layout.oi_classes_csv(root))}"
                if ok is False else None for v, ok in zip(df["LabelName"], df["label_known"]))
            sink.append(df)
    out.tables = {"boxes": concat(boxes, ["file", "record"]),
                  "labels": concat(labels, ["file", "record"])}
    if classes is not None:
        out.tables["classes"] = concat([classes], ["file", "record"])
    return out


def _oi_numeric(df: pd.DataFrame, columns: Iterable[str]) -> None:
    """Parse numeric columns in place; unparsable cells go to ``schema_ok``/``schema__why``."""
    errors: list[list[str]] = [[] for _ in range(len(df))]
    for col in columns:
        num = pd.to_numeric(df[col], errors="coerce").astype(float)
        for i in np.flatnonzero(num.isna().to_numpy()):
            errors[i].append(f"{col} {show(df[col].iat[i])} is not a number")
        df[col] = num
    df["schema_ok"] = objects(not e for e in errors)
    df["schema__why"] = objects("; ".join(e) or None for e in errors)


# ---------------------------------------------------------------------------- captions
def caption_frames(root: Path, paths: list[Path]) -> Frames:
    """One row per non-blank JSONL line: ``image``, ``caption`` and the line checks."""
    out = Frames()
    parts = []
    for path in paths:
        file = rel(root, path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            out.failures.append(Failure(file, "-", f"cannot read file: {err.strerror}"))
            continue
        cols: dict[str, list] = {k: [] for k in (
            "record", "image", "caption", "utf8_ok", "json_ok", "schema_ok", "line__why")}
        for no, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            image = caption = None
            utf8 = js = schema = None
            why = None
            try:
                text = line.decode("utf-8")
                utf8 = True
            except UnicodeDecodeError as err:
                utf8, why = False, f"not valid UTF-8 at byte {err.start} of the line ({err.reason})"
            if utf8:
                try:
                    obj = json.loads(text)
                    js = True
                except json.JSONDecodeError as err:
                    js, why = False, f"invalid JSON: {err.msg} (column {err.colno})"
            if js:
                errors = []
                if not isinstance(obj, dict):
                    errors.append(f"line must be a JSON object, got {json_type(obj)}")
                else:
                    kc = KeyCheck(obj)
                    image, caption = kc.get("image", "name"), kc.get("caption", "string")
                    errors = kc.errors
                schema, why = not errors, "; ".join(errors) or None
            for key, v in (("record", f"line {no}"), ("image", image), ("caption", caption),
                           ("utf8_ok", utf8), ("json_ok", js), ("schema_ok", schema),
                           ("line__why", why)):
                cols[key].append(v)
        df = pd.DataFrame({k: objects(v) for k, v in cols.items()})
        df.insert(0, "file", file)
        df["caption_not_blank"] = objects(None if c is None else c.strip() != ""
                                          for c in df["caption"])
        parts.append(df)
    out.tables = {"captions": concat(parts, ["file", "record", "image", "caption"])}
    return out
