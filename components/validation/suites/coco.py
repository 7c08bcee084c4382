"""COCO instances suite: ``annotations/instances_<split>.json``.

Rules: unique image/annotation/category ids (per file); every annotation's image_id and
category_id exist; bbox = 4 finite numbers with positive w/h inside the image (tolerance
``validation.bbox_tolerance_px``); polygon rings >= 3 points inside the image; RLE ``size`` =
[height, width] of its image; area > 0; iscrowd in {0, 1}; each image file passes the image
checks and its size (after EXIF orientation) equals the record's width/height.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data import layout
from components.validation.images import ImageChecker
from components.validation.result import Failure
from components.validation.suites.base import (Config, Suite, Table, WarningRule, expect_true,
                                               image_columns, register, rel_paths)
from components.validation.tables import coco_frames, objects


@register
class CocoSuite(Suite):
    name = "coco"

    def discover(self, root: Path) -> list[Path]:
        return sorted((Path(root) / layout.ANNOTATIONS).glob("instances_*.json"))

    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        import great_expectations.expectations as gxe

        frames = coco_frames(root, files, cfg.bbox_tolerance_px)
        img, ann, cat = (frames.tables[k] for k in ("images", "annotations", "categories"))

        def unique(kind: str):
            return gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["file", "id"], ignore_row_if="any_value_is_missing",
                meta={"rule": f"{kind} id must be unique within the file"})

        def positive(column: str, rule: str):
            return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True,
                                                     meta={"rule": rule})

        img_exp = [expect_true("schema_ok", "image record must match the COCO schema",
                               "schema__why"), unique("image")]
        img_exp += image_columns(
            img, rel_paths(img.get("file_name", pd.Series(dtype=object))), images)
        _size_column(img)
        img_exp.append(expect_true("size_matches", "image width/height must match the file",
                                   "size__why"))

        ann_exp = [
            expect_true("schema_ok", "annotation must match the COCO schema", "schema__why"),
            unique("annotation"),
            expect_true("image_exists", "annotation image_id must be an image of this file",
                        "image_exists__why"),
            expect_true("category_exists",
                        "annotation category_id must be a category of this file",
                        "category_exists__why"),
            expect_true("bbox_finite", "bbox values must be finite", "bbox__why"),
            positive("bbox_w", "bbox width must be > 0"),
            positive("bbox_h", "bbox height must be > 0"),
            expect_true("bbox_in_image", "bbox must lie inside its image", "bbox_in_image__why"),
            positive("area", "area must be > 0"),
            gxe.ExpectColumnValuesToBeInSet(column="iscrowd", value_set=[0, 1],
                                            meta={"rule": "iscrowd must be 0 or 1"}),
            expect_true("polygon_rings_ok", "polygon rings need at least 3 points",
                        "polygon_rings_ok__why"),
            expect_true("polygon_in_image", "polygon points must lie inside the image",
                        "polygon_in_image__why"),
            expect_true("rle_size_ok", "RLE size must equal the image's [height, width]",
                        "rle_size_ok__why"),
            expect_true("rle_counts_ok", "RLE counts must fill height x width exactly",
                        "rle_counts_ok__why"),
        ]
        cat_exp = [expect_true("schema_ok", "category must match the COCO schema", "schema__why"),
                   unique("category"),
                   gxe.ExpectCompoundColumnsToBeUnique(
                       column_list=["file", "name"], ignore_row_if="any_value_is_missing",
                       meta={"rule": "category name must be unique within the file"})]
        warnings = [WarningRule("mask_missing", "instance without a usable mask (box only)",
                                "mask_missing__why")]
        tables = [Table("coco.images", img, img_exp),
                  Table("coco.annotations", ann, ann_exp, warnings),
                  Table("coco.categories", cat, cat_exp)]
        return tables, frames.failures + _same_categories(cat)


def _same_categories(cat: pd.DataFrame) -> list[Failure]:
    """Every split file must define the same categories (ids and names) as the first: the
    detector's classes come from the train split, and evaluation maps them back by id."""
    if cat.empty:
        return []
    per_file = {f: {(i, n) for i, n in zip(g["id"], g["name"]) if i is not None}
                for f, g in cat.groupby("file", sort=True)}
    files = sorted(per_file, key=lambda f: (not f.endswith("instances_train.json"), f))
    ref_file, ref = files[0], per_file[files[0]]
    out = []
    for f in files[1:]:
        if per_file[f] != ref:
            extra = sorted(per_file[f] - ref)[:5]
            lacking = sorted(ref - per_file[f])[:5]
            out.append(Failure(f, "categories", (
                f"categories must be the same in every split: differs from {ref_file} "
                f"(only here: {extra or 'none'}; only there: {lacking or 'none'})")))
    return out


def _size_column(df: pd.DataFrame) -> None:
    """``size_matches``: the record's width/height equal the decoded (EXIF-applied) size."""
    ok, why = [], []
    cols = [df.get(c, pd.Series([None] * len(df), dtype=object))
            for c in ("width", "height", "img_width", "img_height")]
    for w, h, fw, fh in zip(*cols):
        if None in (w, h, fw, fh):
            ok.append(None)
            why.append(None)
        else:
            ok.append(w == fw and h == fh)
            why.append(None if ok[-1] else
                       f"record says {w}x{h} but the file is {fw}x{fh} (width x height after "
                       "EXIF orientation, as OpenCV/mmdet load it)")
    df["size_matches"] = objects(ok)
    df["size__why"] = objects(why)
