"""The ``curation`` section of params.yaml: defaults, merging and checking.

Why defaults in code: the stage must run before params.yaml has a ``curation:`` block, and
``--set curation.holdout=[...]`` must work on such a file, so :func:`with_defaults` fills the
section in before overrides are applied (keys already in params.yaml win).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["CURATION_DEFAULTS", "CAPTION_DUP_MODES", "CurationConfig", "with_defaults"]

CAPTION_DUP_MODES = ("keep_first", "drop_all", "off")

CURATION_DEFAULTS: dict[str, Any] = {
    "out": "data/curated",            # <split>.jsonl + manifest.json (the UniCL input)
    "report": "results/curation",     # report.md, counts.json, metrics.json
    "splits": ["train", "val", "test"],
    # text
    "caption_words": [3, 64],         # whitespace-separated words, inclusive
    "caption_chars": [10, 500],       # characters, inclusive
    "min_ascii_ratio": 0.9,           # printable-ASCII characters / all characters
    "min_letter_ratio": 0.5,          # ASCII letters / non-space characters
    "min_english_ratio": 0.2,         # words in the built-in English list / all words; 0 = off
    # images (sizes from the header, EXIF orientation ignored: it swaps w/h, not the ratio)
    "min_side": 32,                   # pixels, shorter side
    "max_aspect": 3.0,                # longer side / shorter side
    # duplicates
    # near-duplicate if the pHash Hamming distance is <= this (of 64 bits); < 0 = off. Built-in
    # scenes: JPEG re-encodes (q50-q75) and 0.75-1.5x resizes of 300 images land at 0-4; of
    # the ~2M pairs of distinct train scenes one is at 4 (removed), the next closest at 8
    "phash_max_distance": 4,
    "duplicate_captions": "keep_first",  # keep_first | drop_all | off (identical pairs always go)
    "eval_overlap": True,             # drop train images that duplicate a val/test image
    # labels and zero-shot hold-out
    "labels": True,                   # extract class names from captions into "labels"
    "vocabulary": None,               # class names; null = the dataset's COCO / OpenImages classes
    "require_label": False,           # drop pairs whose caption names no class
    # class names or phrases no train caption may mention (zero-shot targets; val/test keep
    # them). Default: one colour-shape composition per shape of the built-in scenes, distinct
    # colours, each the one with the most val and test mentions (10/7, 6/6, 4/7, 6/4 pairs);
    # 330 of 2000 train pairs name one. A whole shape would cost half the train split and a
    # word the text encoder never saw; here both words of each phrase are seen, apart.
    "holdout": ["black circle", "yellow square", "gray triangle", "blue star"],
    "examples": 3,                    # removed captions listed per reason and split in report.md
}


@dataclass(frozen=True)
class CurationConfig:
    """Checked, typed view of the ``curation`` section (see :data:`CURATION_DEFAULTS`)."""
    out: str
    report: str
    splits: tuple[str, ...]
    caption_words: tuple[int, int]
    caption_chars: tuple[int, int]
    min_ascii_ratio: float
    min_letter_ratio: float
    min_english_ratio: float
    min_side: int
    max_aspect: float
    phash_max_distance: int
    duplicate_captions: str
    eval_overlap: bool
    labels: bool
    vocabulary: tuple[str, ...] | None
    require_label: bool
    holdout: tuple[str, ...]
    examples: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "CurationConfig":
        """From the whole params dict (its ``curation`` section over the defaults)."""
        section = dict(with_defaults(params)["curation"])
        unknown = sorted(set(section) - set(CURATION_DEFAULTS))
        if unknown:
            raise KeyError(f"params.yaml curation: unknown keys {unknown}; known: "
                           f"{sorted(CURATION_DEFAULTS)}")
        mode = section["duplicate_captions"]
        if mode not in CAPTION_DUP_MODES:
            raise ValueError(f"curation.duplicate_captions must be one of {CAPTION_DUP_MODES}, "
                             f"got {mode!r}")
        phash = int(section["phash_max_distance"])
        if phash > 32:
            raise ValueError(f"curation.phash_max_distance {phash} > 32 of 64 bits would call "
                             "unrelated images duplicates; use 0-10 (or -1 to switch it off)")
        vocab = section["vocabulary"]
        return cls(
            out=str(section["out"]), report=str(section["report"]),
            splits=tuple(str(s) for s in section["splits"]),
            caption_words=_bounds(section, "caption_words"),
            caption_chars=_bounds(section, "caption_chars"),
            min_ascii_ratio=float(section["min_ascii_ratio"]),
            min_letter_ratio=float(section["min_letter_ratio"]),
            min_english_ratio=float(section["min_english_ratio"]),
            min_side=int(section["min_side"]), max_aspect=float(section["max_aspect"]),
            phash_max_distance=phash, duplicate_captions=mode,
            eval_overlap=bool(section["eval_overlap"]), labels=bool(section["labels"]),
            vocabulary=None if vocab is None else tuple(str(v) for v in vocab),
            require_label=bool(section["require_label"]),
            holdout=tuple(str(h) for h in section["holdout"] or ()),
            examples=int(section["examples"]))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, not tuples), for the manifest."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def with_defaults(params: Mapping[str, Any]) -> dict:
    """A deep copy of ``params`` whose ``curation`` section has every default key."""
    from components.common.params import with_section_defaults

    return with_section_defaults(params, "curation", CURATION_DEFAULTS, strict=False)


def _bounds(section: Mapping[str, Any], key: str) -> tuple[int, int]:
    value = section[key]
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"curation.{key} must be [min, max], got {value!r}") from None
    if not 0 <= lo <= hi:
        raise ValueError(f"curation.{key} must satisfy 0 <= min <= max, got {value!r}")
    return lo, hi
