"""OpenImages suite: ``openimages/<split>-annotations-{bbox,human-imagelabels}.csv``.

Rules: required columns present; XMin/XMax/YMin/YMax numbers in [0, 1] with min < max;
Confidence in [0, 1]; LabelName listed in ``class-descriptions.csv`` (unique, non-empty
there); ``images/<split>/<ImageID>.jpg`` passes the image checks.
"""
from __future__ import annotations

from pathlib import Path

from components.data import layout
from components.validation.images import ImageChecker
from components.validation.result import Failure
from components.validation.suites.base import (Config, Suite, Table, expect_true, image_columns,
                                               register, rel_paths)
from components.validation.tables import OI_COORDS, oi_frames


@register
class OpenImagesSuite(Suite):
    name = "openimages"

    def discover(self, root: Path) -> list[Path]:
        folder = Path(root) / layout.OPENIMAGES
        files = sorted(folder.glob("*-annotations-bbox.csv"))
        files += sorted(folder.glob("*-annotations-human-imagelabels.csv"))
        if files or layout.oi_classes_csv(root).exists():
            files.append(layout.oi_classes_csv(root))
        return files

    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        import great_expectations.expectations as gxe

        bbox = [f for f in files if f.name.endswith("-annotations-bbox.csv")]
        labels = [f for f in files if f.name.endswith("-annotations-human-imagelabels.csv")]
        frames = oi_frames(root, bbox, labels)
        tables = []
        known = expect_true("label_known", "LabelName must be listed in class-descriptions.csv",
                            "label_known__why")
        schema = expect_true("schema_ok", "numeric columns must hold numbers", "schema__why")

        boxes = frames.tables["boxes"]
        exp = [schema.copy(), known.copy()]
        exp += [gxe.ExpectColumnValuesToBeBetween(
            column=c, min_value=0, max_value=1, meta={"rule": f"{c} must be in [0, 1]"})
            for c in OI_COORDS]
        exp += [gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=f"{a}Max", column_B=f"{a}Min", ignore_row_if="either_value_is_missing",
            meta={"rule": f"{a}Min must be < {a}Max"}) for a in "XY"]
        if "Confidence" in boxes.columns:
            exp.append(_confidence(gxe))
        exp += image_columns(boxes, rel_paths(boxes.get("image", [])), images)
        tables.append(Table("openimages.boxes", boxes, exp))

        lab = frames.tables["labels"]
        exp = [schema.copy(), known.copy()]
        if "Confidence" in lab.columns:
            exp.append(_confidence(gxe))
        exp += image_columns(lab, rel_paths(lab.get("image", [])), images)
        tables.append(Table("openimages.labels", lab, exp))

        if "classes" in frames.tables:
            tables.append(Table("openimages.classes", frames.tables["classes"], [
                gxe.ExpectColumnValuesToNotBeNull(
                    column="LabelName", meta={"rule": "LabelName must not be empty"}),
                gxe.ExpectColumnValuesToBeUnique(
                    column="LabelName", meta={"rule": "LabelName must be unique"}),
            ]))
        return tables, frames.failures


def _confidence(gxe):
    return gxe.ExpectColumnValuesToBeBetween(column="Confidence", min_value=0, max_value=1,
                                             meta={"rule": "Confidence must be in [0, 1]"})
