"""Unlabeled images (``images/unlabeled/``, pretraining input): every file passes the image
checks (stays inside images/, non-empty, readable, within max_pixels, decodes)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data import layout
from components.validation.images import ImageChecker
from components.validation.result import Failure
from components.validation.suites.base import Config, Suite, Table, image_columns, register
from components.validation.tables import concat, objects


@register
class UnlabeledSuite(Suite):
    name = "unlabeled"

    def discover(self, root: Path) -> list[Path]:
        folder = layout.images_dir(root) / layout.UNLABELED
        return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())

    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        base = layout.images_dir(root)
        paths = [p.relative_to(base).as_posix() for p in files]
        df = concat([pd.DataFrame({"file": objects(f"images/{p}" for p in paths),
                                   "record": "-", "image": objects(paths)})], ["file", "record"])
        exp = image_columns(df, df["image"], images)
        return [Table("unlabeled.images", df, exp)], []
