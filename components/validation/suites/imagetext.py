"""Image-text suite: ``captions/<split>.jsonl`` lines ``{"image": ..., "caption": ...}``.

Rules: each line valid UTF-8 (decoded strictly) and JSON with string ``image``/``caption``;
caption not blank and within ``validation.caption_length`` characters; no exact-duplicate
(image, caption) pair across the dataset; the image passes the image checks.
"""
from __future__ import annotations

from pathlib import Path

from components.data import layout
from components.validation.images import ImageChecker
from components.validation.result import Failure
from components.validation.suites.base import (Config, Suite, Table, expect_true, image_columns,
                                               register, rel_paths)
from components.validation.tables import caption_frames


@register
class ImageTextSuite(Suite):
    name = "imagetext"

    def discover(self, root: Path) -> list[Path]:
        return sorted((Path(root) / layout.CAPTIONS).glob("*.jsonl"))

    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        import great_expectations.expectations as gxe

        frames = caption_frames(root, files)
        df = frames.tables["captions"]
        lo, hi = cfg.caption_length
        exp = [
            expect_true("utf8_ok", "caption line must be valid UTF-8", "line__why"),
            expect_true("json_ok", "caption line must be valid JSON", "line__why"),
            expect_true("schema_ok", "caption line must have string 'image' and 'caption'",
                        "line__why"),
            expect_true("caption_not_blank", "caption must not be empty or blank"),
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="caption", min_value=lo, max_value=hi,
                meta={"rule": f"caption length must be within validation.caption_length "
                              f"[{lo}, {hi}] characters"}),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["image", "caption"], ignore_row_if="any_value_is_missing",
                meta={"rule": "duplicate (image, caption) pair"}),
        ]
        exp += image_columns(df, rel_paths(df.get("image", [])), images)
        return [Table("imagetext.captions", df, exp)], frames.failures
