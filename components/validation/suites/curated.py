"""Curated image-text suite: ``<curated>/<split>.jsonl`` lines written by ``components.curation``.

Rules: each line valid UTF-8 JSON with exactly the keys ``image`` (non-empty string),
``caption`` (string), ``labels`` (sorted list of distinct strings) and ``sha256`` (64 lowercase
hex); caption not blank, within the curation's word and character bounds; unique (image,
caption) across the set; every label in the class vocabulary; no train caption mentions a
held-out phrase; the image passes the image checks and its bytes hash to ``sha256``.

Not registered in :data:`~components.validation.suites.base.REGISTRY` on purpose: the
registered suites are what the ``validate`` stage runs on the *dataset* folder, while this one
checks the curation stage's own output with that stage's parameters (bounds, vocabulary,
hold-out). The curation stage calls :func:`check_curated` itself.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from components.validation.images import ImageChecker
from components.validation.result import Failure
from components.validation.suites.base import (Config, Suite, Table, expect_true, image_columns,
                                               rel_paths)
from components.validation.tables import KeyCheck, concat, json_type, objects, rel, show

KEYS = ("caption", "image", "labels", "sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CuratedRules:
    """What the curation stage promised: bounds, vocabulary and the held-out check.

    ``holdout``: text -> held-out phrases it mentions (checked on the ``train`` file only).
    """
    vocabulary: tuple[str, ...]
    caption_words: tuple[int, int]
    caption_chars: tuple[int, int]
    holdout: Callable[[str], list[str]] | None = None
    train_file: str = "train.jsonl"
    max_pixels: int = field(default=Config.max_pixels)


class CuratedSuite(Suite):
    name = "curated"

    def __init__(self, rules: CuratedRules) -> None:
        self.rules = rules

    def discover(self, root: Path) -> list[Path]:
        return sorted(Path(root).glob("*.jsonl"))

    def build(self, root: Path, files: list[Path], cfg: Config,
              images: ImageChecker) -> tuple[list[Table], list[Failure]]:
        import great_expectations.expectations as gxe

        r = self.rules
        df, failures = _frame(root, files)
        _rule_columns(df, r)
        lo, hi = r.caption_chars
        wlo, whi = r.caption_words
        exp = [
            expect_true("json_ok", "curated line must be a UTF-8 JSON object", "line__why"),
            expect_true("schema_ok", f"curated line must have exactly {list(KEYS)} (image: "
                        "non-empty string, caption: string, labels: sorted distinct strings, "
                        "sha256: 64 lowercase hex)", "line__why"),
            expect_true("caption_not_blank", "caption must not be empty or blank"),
            gxe.ExpectColumnValueLengthsToBeBetween(
                column="caption_stripped", min_value=lo, max_value=hi,
                meta={"rule": f"caption length must be within curation.caption_chars "
                              f"[{lo}, {hi}] characters"}),
            gxe.ExpectColumnValuesToBeBetween(
                column="caption_words", min_value=wlo, max_value=whi,
                meta={"rule": f"caption must have curation.caption_words [{wlo}, {whi}] words"}),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["image", "caption"], ignore_row_if="any_value_is_missing",
                meta={"rule": "duplicate (image, caption) pair"}),
            expect_true("labels_known", "labels must be class names of the vocabulary",
                        "labels__why"),
            expect_true("holdout_absent", "train captions must not mention a held-out phrase",
                        "holdout__why"),
        ]
        exp += image_columns(df, rel_paths(df.get("image", [])), images)
        _sha_column(df, images)
        exp.append(expect_true("sha256_matches", "sha256 must be the image file's sha256",
                               "sha__why"))
        return [Table("curated.pairs", df, exp)], failures


def check_curated(folder: Path, images_root: Path, rules: CuratedRules,
                  progress: bool = False) -> list[Failure]:
    """Run :class:`CuratedSuite` on ``folder``'s JSONL files; the failures (empty = pass).

    ``images_root``: the dataset's ``images/`` folder the ``image`` paths are relative to.
    """
    from components.validation.runner import validate_table

    suite = CuratedSuite(rules)
    files = suite.discover(folder)
    if not files:
        return [Failure(str(folder), "-", "no curated <split>.jsonl files to validate")]
    checker = ImageChecker(images_root, rules.max_pixels, decode=False, progress=progress)
    tables, failures = suite.build(Path(folder), files, Config(), checker)
    for table in tables:
        failures += validate_table(table)[1]
    return failures


def _frame(root: Path, files: list[Path]) -> tuple[pd.DataFrame, list[Failure]]:
    """One row per non-blank line: ``image``, ``caption``, ``labels``, ``sha256`` + line checks."""
    parts, failures = [], []
    for path in files:
        file = rel(root, path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            failures.append(Failure(file, "-", f"cannot read file: {err.strerror}"))
            continue
        rows = []
        for no, line in enumerate(raw.split(b"\n"), start=1):
            if line.strip():
                rows.append({"file": file, "record": f"line {no}", **_parse(line)})
        parts.append(pd.DataFrame({k: objects(r[k] for r in rows) for k in rows[0]})
                     if rows else pd.DataFrame())
    return concat(parts, ["file", "record", *KEYS]), failures


def _parse(line: bytes) -> dict:
    out = {"image": None, "caption": None, "labels": None, "sha256": None,
           "json_ok": False, "schema_ok": None, "line__why": None}
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        out["line__why"] = f"not valid UTF-8 at byte {err.start} of the line ({err.reason})"
        return out
    except json.JSONDecodeError as err:
        out["line__why"] = f"invalid JSON: {err.msg} (column {err.colno})"
        return out
    if not isinstance(obj, dict):
        out["line__why"] = f"line must be a JSON object, got {json_type(obj)}"
        return out
    out["json_ok"] = True
    kc = KeyCheck(obj)
    image, caption, sha = kc.get("image", "name"), kc.get("caption", "string"), kc.get(
        "sha256", "string")
    errors = kc.errors
    if extra := sorted(set(obj) - set(KEYS)):
        errors.append(f"unexpected key(s) {extra}")
    if sha is not None and not _SHA256.match(sha):
        errors.append(f"sha256 must be 64 lowercase hex digits, got {show(sha)}")
        sha = None
    labels = obj.get("labels")
    if "labels" not in obj:
        errors.append("key 'labels' missing")
    elif not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        errors.append(f"key 'labels' must be a list of strings, got {show(labels)}")
        labels = None
    elif labels != sorted(set(labels)):
        errors.append(f"labels must be sorted and distinct, got {show(labels)}")
    out.update(image=image, caption=caption, sha256=sha,
               labels=None if labels is None else tuple(labels),
               schema_ok=not errors, line__why="; ".join(errors) or None)
    return out


def _rule_columns(df: pd.DataFrame, r: CuratedRules) -> None:
    captions = list(df.get("caption", []))
    df["caption_not_blank"] = objects(None if c is None else c.strip() != "" for c in captions)
    df["caption_stripped"] = objects(None if c is None else c.strip() for c in captions)
    df["caption_words"] = objects(None if c is None else len(c.split()) for c in captions)
    vocab = set(r.vocabulary)
    unknown = [None if labels is None else sorted(set(labels) - vocab)
               for labels in df.get("labels", [])]
    df["labels_known"] = objects(None if u is None else not u for u in unknown)
    df["labels__why"] = objects(f"not in the vocabulary: {u}" if u else None for u in unknown)
    hits = [r.holdout(c) if r.holdout and c is not None and f == r.train_file else None
            for f, c in zip(df.get("file", []), captions)]
    df["holdout_absent"] = objects(None if h is None else not h for h in hits)
    df["holdout__why"] = objects(f"mentions {h}" if h else None for h in hits)


def _sha_column(df: pd.DataFrame, images: ImageChecker) -> None:
    """``sha256_matches``: evaluated where the image passed its checks and the line's sha256
    is well formed; each file is hashed once."""
    digests: dict[str, str] = {}
    ok, why = [], []
    for image, sha in zip(df.get("image", []), df.get("sha256", [])):
        check = images.cache.get(image) if image is not None else None
        if sha is None or check is None or check.failed is not None:
            ok.append(None)
            why.append(None)
            continue
        if image not in digests:
            digests[image] = hashlib.sha256(check.path.read_bytes()).hexdigest()
        ok.append(digests[image] == sha)
        why.append(None if ok[-1] else f"file hashes to {digests[image]}, line says {sha}")
    df["sha256_matches"] = objects(ok)
    df["sha__why"] = objects(why)
