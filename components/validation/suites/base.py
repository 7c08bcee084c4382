"""The suite contract and registry.

A suite owns one dataset format. ``discover(root)`` returns the files it applies to (none =
the suite is skipped); ``build(...)`` flattens them into :class:`Table` s, each a DataFrame
plus the GX expectations to run on it, and returns file-level problems found before GX.

Every expectation carries ``meta={"rule": <human rule>, "why": <column>}``: the rule is what a
failure line says, the optional ``why`` column holds a per-row explanation (which key, which
value) written by the plain-Python checks in :mod:`components.validation.tables`.

Adding a suite = one file in this package with a :func:`register` ed subclass of
:class:`Suite`, imported from ``suites/__init__.py``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from components.common.registry import Registry
from components.validation.images import RULE_TEXT, RULES, ImageChecker
from components.validation.result import Failure
from components.validation.tables import objects


@dataclass(frozen=True)
class Config:
    """The ``validation`` section of params.yaml."""
    max_pixels: int = 40_000_000
    caption_length: tuple[int, int] = (3, 1000)
    decode_images: bool = True
    bbox_tolerance_px: float = 1.0

    @classmethod
    def from_params(cls, params: dict) -> "Config":
        """Accepts the ``validation`` section or the whole params dict."""
        section = params.get("validation", params) if isinstance(params, dict) else {}
        lo, hi = section.get("caption_length", (3, 1000))
        return cls(max_pixels=int(section.get("max_pixels", 40_000_000)),
                   caption_length=(int(lo), int(hi)),
                   decode_images=bool(section.get("decode_images", True)),
                   bbox_tolerance_px=float(section.get("bbox_tolerance_px", 1.0)))


@dataclass(frozen=True)
class WarningRule:
    """A row-level finding that does not fail the gate: rows where boolean ``column`` is True
    are listed (with the text of ``why``) and counted in the summary under ``rule``."""
    column: str
    rule: str
    why: str | None = None


@dataclass
class Table:
    """A flat table, the expectations GX runs on it in one validation, and its warnings."""
    name: str
    df: pd.DataFrame
    expectations: list
    warnings: list[WarningRule] = field(default_factory=list)


class Suite(ABC):
    name: ClassVar[str]

    @abstractmethod
    def discover(self, root: Path) -> list[Path]:
        """Files of this format under the dataset ``root`` (sorted)."""

    @abstractmethod
    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        """Tables to validate with GX, plus file-level failures found while reading."""


REGISTRY: Registry[Suite] = Registry("validation suite", "components/validation/suites/")


def register(cls: type[Suite]) -> type[Suite]:
    """Class decorator: make a suite available by its ``name``."""
    REGISTRY.register(cls.name, cls(), source=cls)
    return cls


# ---------------------------------------------------------------------------- expectation helpers
def expect_true(column: str, rule: str, why: str | None = None):
    """The column (a per-row check computed in Python) must be True where not null."""
    import great_expectations.expectations as gxe
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True],
                                           meta={"rule": rule, "why": why})


def image_columns(df: pd.DataFrame, paths: pd.Series, images: ImageChecker) -> list:
    """Add the ``img_*`` rule columns for the image each row references; return expectations.

    ``paths`` holds paths relative to ``images/`` (None = no path; rules not evaluated).
    """
    checks = images.check(p for p in paths if p is not None)
    rows = [checks.get(p) if p is not None else None for p in paths]
    for rule in RULES:
        df[rule] = objects(None if c is None else c.status(rule) for c in rows)
    df["img__why"] = objects(None if c is None else c.why for c in rows)
    df["img_width"] = objects(None if c is None else c.width for c in rows)
    df["img_height"] = objects(None if c is None else c.height for c in rows)
    return [expect_true(rule, RULE_TEXT[rule], "img__why") for rule in RULES]


def rel_paths(values: pd.Series) -> pd.Series:
    return objects(v if isinstance(v, str) else None for v in values)
