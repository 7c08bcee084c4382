"""The curation rules, applied to one split's pairs: every removal has exactly one reason.

Order (the first rule that fires names the removal, so ``in = kept + sum(removed)``):

1. per pair, in :data:`REASONS` order: caption length, character set, English-likeness,
   image size, aspect ratio, held-out mention (train only), no class label (if required);
2. per distinct image file among the survivors, in order of first appearance: a train image
   that duplicates a val/test image (``eval_overlap``), the same bytes as an earlier kept file
   (``exact_dup_image``), a pHash within ``phash_max_distance`` of an earlier kept image
   (``near_dup_image``). Several captions of one file are not duplicates of each other;
3. per caption among the survivors: an identical (image, caption) pair, or with
   ``duplicate_captions`` keep_first / drop_all the same normalised caption (``dup_caption``).

Duplicates are looked for after the per-pair filters so that a file whose first copy lost its
caption to a filter keeps its other copy.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from components.curation.config import CurationConfig
from components.curation.images import ImageInfo, NearDupIndex
from components.curation.labels import PhraseMatcher
from components.curation.text import (ascii_ratio, english_ratio, known_words, length_reason,
                                      letter_ratio, normalize)

__all__ = ["REASONS", "TRAIN", "Pair", "Removal", "SplitResult", "EvalImages", "Curator"]

TRAIN = "train"   # the split whose captions must not mention a held-out phrase
REASONS = ("caption_too_short", "caption_too_long", "charset", "not_english", "image_too_small",
           "aspect_ratio", "holdout_mention", "no_label", "eval_overlap", "exact_dup_image",
           "near_dup_image", "dup_caption")


@dataclass(frozen=True)
class Pair:
    """One input line of ``captions/<split>.jsonl`` (``line`` 1-based)."""
    split: str
    line: int
    image: str        # relative to the dataset's images/ folder
    caption: str


@dataclass(frozen=True)
class Removal:
    pair: Pair
    reason: str       # one of REASONS
    detail: str = ""  # e.g. "duplicate of train/000003.jpg (distance 2)"


@dataclass
class SplitResult:
    split: str
    n_in: int
    kept: list[tuple[Pair, list[str]]] = field(default_factory=list)   # (pair, labels)
    removed: list[Removal] = field(default_factory=list)

    def counts(self) -> dict:
        """``{"in", "kept", "removed": {reason: n for every reason}}``."""
        by = Counter(r.reason for r in self.removed)
        return {"in": self.n_in, "kept": len(self.kept),
                "removed": {r: by.get(r, 0) for r in REASONS}}


class EvalImages:
    """The val/test images a train image must not duplicate (exactly or by pHash)."""

    def __init__(self, images: Mapping[str, ImageInfo], max_distance: int) -> None:
        self.sha = {}
        for rel, info in images.items():
            self.sha.setdefault(info.sha256, rel)
        self.index = NearDupIndex(max_distance) if max_distance >= 0 else None
        if self.index is not None:
            for rel, info in images.items():
                self.index.add(info.phash, rel)

    def match(self, info: ImageInfo) -> str | None:
        """What the image duplicates (``"val/000001.jpg"``, with the distance), or None."""
        if info.sha256 in self.sha:
            return f"same bytes as {self.sha[info.sha256]}"
        hit = self.index.query(info.phash) if self.index is not None else None
        return None if hit is None else f"pHash distance {hit[1]} to {hit[0]}"


class Curator:
    """Applies the rules of ``cfg`` with the class ``vocabulary`` (see the module docstring)."""

    def __init__(self, cfg: CurationConfig, vocabulary: Iterable[str]) -> None:
        self.cfg = cfg
        self.labels = PhraseMatcher(vocabulary)
        self.holdout = PhraseMatcher(cfg.holdout)
        self.known = known_words(self.labels.forms() + self.holdout.forms())

    # -------------------------------------------------------------------- per pair
    def text_reason(self, caption: str) -> str | None:
        c = self.cfg
        if reason := length_reason(caption, c.caption_words, c.caption_chars):
            return reason
        if ascii_ratio(caption) < c.min_ascii_ratio or letter_ratio(caption) < c.min_letter_ratio:
            return "charset"
        if c.min_english_ratio > 0 and english_ratio(caption, self.known) < c.min_english_ratio:
            return "not_english"
        return None

    def image_reason(self, info: ImageInfo) -> str | None:
        short, long = sorted((info.width, info.height))
        if short < self.cfg.min_side:
            return "image_too_small"
        if long / short > self.cfg.max_aspect:
            return "aspect_ratio"
        return None

    def pair_reason(self, pair: Pair, info: ImageInfo) -> tuple[str, str] | None:
        """(reason, detail) of the first per-pair rule ``pair`` breaks, or None."""
        if reason := self.text_reason(pair.caption):
            return reason, ""
        if reason := self.image_reason(info):
            return reason, f"{info.width}x{info.height}"
        if pair.split == TRAIN and (hits := self.holdout.find(pair.caption)):
            return "holdout_mention", ", ".join(hits)
        if self.cfg.require_label and not self.labels.find(pair.caption):
            return "no_label", ""
        return None

    def label(self, caption: str) -> list[str]:
        return self.labels.find(caption) if self.cfg.labels else []

    # -------------------------------------------------------------------- one split
    def curate(self, split: str, pairs: list[Pair], infos: Mapping[str, ImageInfo],
               eval_images: EvalImages | None = None) -> SplitResult:
        """Curate one split. ``infos``: image path -> facts, for every image of ``pairs``;
        ``eval_images``: checked only for the train split (and when ``eval_overlap``)."""
        out = SplitResult(split, len(pairs))
        survivors = []
        for pair in pairs:
            hit = self.pair_reason(pair, infos[pair.image])
            if hit:
                out.removed.append(Removal(pair, *hit))
            else:
                survivors.append(pair)
        dropped = self._duplicate_images(split, survivors, infos, eval_images)
        out.removed += [Removal(p, *dropped[p.image]) for p in survivors if p.image in dropped]
        survivors = [p for p in survivors if p.image not in dropped]
        for pair, reason in zip(survivors, self._caption_duplicates(survivors)):
            if reason:
                out.removed.append(Removal(pair, "dup_caption", reason))
            else:
                out.kept.append((pair, self.label(pair.caption)))
        out.removed.sort(key=lambda r: r.pair.line)
        return out

    def _duplicate_images(self, split: str, pairs: list[Pair], infos: Mapping[str, ImageInfo],
                          eval_images: EvalImages | None) -> dict[str, tuple[str, str]]:
        """image path -> (reason, detail) for the files to drop (see the module docstring)."""
        check_eval = split == TRAIN and self.cfg.eval_overlap and eval_images is not None
        near = NearDupIndex(self.cfg.phash_max_distance) if self.cfg.phash_max_distance >= 0 \
            else None
        kept_sha: dict[str, str] = {}
        dropped: dict[str, tuple[str, str]] = {}
        for rel in dict.fromkeys(p.image for p in pairs):
            info = infos[rel]
            if check_eval and (what := eval_images.match(info)):
                dropped[rel] = ("eval_overlap", what)
            elif info.sha256 in kept_sha:
                dropped[rel] = ("exact_dup_image", f"same bytes as {kept_sha[info.sha256]}")
            elif near is not None and (hit := near.query(info.phash)):
                dropped[rel] = ("near_dup_image", f"pHash distance {hit[1]} to {hit[0]}")
            else:
                kept_sha[info.sha256] = rel
                if near is not None:
                    near.add(info.phash, rel)
        return dropped

    def _caption_duplicates(self, pairs: list[Pair]) -> list[str | None]:
        """Per pair: why its caption is a duplicate, or None to keep it."""
        mode = self.cfg.duplicate_captions
        keys = [normalize(p.caption) for p in pairs]
        counts = Counter(keys)
        first: dict[str, Pair] = {}
        seen_pairs: set[tuple[str, str]] = set()
        out: list[str | None] = []
        for pair, key in zip(pairs, keys):
            why = None
            if (pair.image, pair.caption) in seen_pairs:
                why = "identical (image, caption) pair"
            elif mode == "keep_first" and key in first:
                why = f"same caption as {first[key].image} (line {first[key].line})"
            elif mode == "drop_all" and counts[key] > 1:
                why = f"caption repeated {counts[key]} times"
            seen_pairs.add((pair.image, pair.caption))
            first.setdefault(key, pair)
            out.append(why)
        return out
