"""The curated image-text pairs, and what a caption says: class names and colour-class concepts.

Input contract (written by the curation stage, :mod:`components.curation`)::

    <curated>/<split>.jsonl   {"image": <path rel. to <data.out>/images/>, "caption": str,
                               "labels": [class names the caption names], "sha256": str}
    <curated>/manifest.json   {"vocabulary": [class names], "holdout": [held-out phrases], ...}

``<curated>`` is ``curation.out`` (default ``data/curated``).

**The UniCL label of a pair** (:func:`label_keys`). UniCL treats pairs that share a label as
positives. A synthetic caption names several objects, each with a colour where it is
unambiguous ("two red squares and a small blue star"), so a label must be a *set*. Modes:

* ``concepts`` (default): the sorted set of everything the caption names among the class
  names and the colour-class compositions ("blue star", "red square", "square", "star").
  Two pairs are positives iff their captions name the same coloured objects; templates,
  counts, sizes and relations may differ. Why not the curated ``labels`` (shape names only):
  then "a red star" and "a blue star" are positives of each other, and the loss is minimised
  by an image embedding that ignores colour, the attribute zero-shot on held-out colour-shape
  compositions tests.
* ``labels``: the sorted curated ``labels`` set (UniCL's image-label view, colours ignored).
* ``pair``: every pair its own label: the loss is then exactly CLIP's.

Measured with the CPU default (735 steps, 64 px, hold-out black circle / yellow square / gray
triangle / blue star): zero-shot held-out accuracy 63.5% (``concepts``), 61.3% (``pair``),
25.7% = chance (``labels``: colour zero-shot fell from 49% to 16%, as argued above).

A caption naming nothing gets a label of its own (never a positive of another such pair).
Matching uses the curation stage's :class:`~components.curation.labels.PhraseMatcher` (whole
words, singular or plural), so training labels and hold-out filtering agree on what a caption
mentions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from components.common.env import PROJECT_ROOT

__all__ = ["LABEL_KEYS", "Pair", "curated_dir", "read_pairs", "read_manifest", "default_colours",
           "Concepts", "label_keys", "label_ids"]

LABEL_KEYS = ("concepts", "labels", "pair")


@dataclass(frozen=True)
class Pair:
    """One curated pair; ``image`` is relative to ``<data.out>/images/``."""

    image: str
    caption: str
    labels: tuple[str, ...] = ()


def curated_dir(params: Mapping[str, Any], root: Path = PROJECT_ROOT) -> Path:
    """``curation.out`` (default ``data/curated``), relative to the project root."""
    path = Path((params.get("curation") or {}).get("out", "data/curated"))
    return path if path.is_absolute() else root / path


def read_pairs(curated: Path, split: str) -> list[Pair]:
    """The pairs of ``<curated>/<split>.jsonl`` in file order (SystemExit if it is missing)."""
    from components.data.formats import read_jsonl

    path = Path(curated) / f"{split}.jsonl"
    if not path.is_file():
        raise SystemExit(f"no curated pairs at {path}: run the curation stage first "
                         "(python -m components.curation --params params.yaml), or point "
                         "curation.out / pretrain.unicl.curated at the curated folder")
    pairs = []
    for i, rec in enumerate(read_jsonl(path), start=1):
        if not isinstance(rec.get("image"), str) or not isinstance(rec.get("caption"), str):
            raise SystemExit(f"{path}: record {i} needs string 'image' and 'caption'")
        pairs.append(Pair(rec["image"], rec["caption"], tuple(rec.get("labels") or ())))
    return pairs


def read_manifest(curated: Path) -> dict:
    """``<curated>/manifest.json`` (``{}`` when absent: no vocabulary, no hold-out)."""
    path = Path(curated) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def default_colours() -> tuple[str, ...]:
    """The colour words of the built-in scenes (the painted palette)."""
    from components.data.synthetic.scene import PALETTE

    return tuple(PALETTE)


class Concepts:
    """What a caption names: class names and ``"<colour> <class>"`` compositions.

    Args:
        vocabulary: class names (e.g. the shapes).
        colours: colour words (default :func:`default_colours`).
    """

    def __init__(self, vocabulary: Sequence[str], colours: Sequence[str] | None = None) -> None:
        from components.curation.labels import PhraseMatcher

        self.vocabulary = [str(v) for v in vocabulary]
        self.colours = list(default_colours() if colours is None else colours)
        self.compositions = [f"{c} {v}" for c in self.colours for v in self.vocabulary]
        self._all = PhraseMatcher([*self.vocabulary, *self.compositions])
        self._comp = PhraseMatcher(self.compositions)
        self._split = {f"{c} {v}".lower(): (c, v) for c in self.colours for v in self.vocabulary}

    def names(self, caption: str) -> list[str]:
        """Sorted class names and compositions ``caption`` mentions."""
        return self._all.find(caption)

    def parse(self, phrase: str) -> tuple[str | None, str | None]:
        """``"red star"`` -> ``("red", "star")``; ``"star"`` -> ``(None, "star")``; ``"red"`` ->
        ``("red", None)``; anything else ``(None, None)``."""
        key = " ".join(phrase.lower().split())
        if key in self._split:
            return self._split[key]
        lower = {v.lower(): v for v in self.vocabulary}
        if key in lower:
            return None, lower[key]
        colours = {c.lower(): c for c in self.colours}
        return (colours[key], None) if key in colours else (None, None)

    def listing_colours(self, caption: str) -> dict[str, str]:
        """``{class: colour}`` for the classes whose colour the caption's FIRST sentence states.

        The synthetic captions list every (non-crowd) object there, one phrase per class; a
        phrase carries a colour only when all objects of the class share it ("two red
        squares", "a small blue star", but "three circles" of mixed colours). So a class in
        the result has that colour for every one of its objects in the image.
        """
        first = caption.split(".")[0]
        out: dict[str, str] = {}
        for comp in self._comp.find(first):
            colour, cls = self._split[comp.lower()]
            if cls in out:  # two colours for one class: not the synthetic listing; trust none
                out[cls] = ""
            else:
                out[cls] = colour
        return {k: v for k, v in out.items() if v}


def label_keys(pairs: Sequence[Pair], mode: str, concepts: Concepts | None = None) -> list[str]:
    """One label string per pair (see the module docstring); ``concepts`` for mode concepts."""
    if mode not in LABEL_KEYS:
        raise ValueError(f"pretrain.unicl.label_key must be one of {LABEL_KEYS}, got {mode!r}")
    keys = []
    for i, pair in enumerate(pairs):
        if mode == "concepts":
            if concepts is None:
                raise ValueError("label_key 'concepts' needs the Concepts of the vocabulary")
            names = concepts.names(pair.caption)
        elif mode == "labels":
            names = sorted(pair.labels)
        else:
            names = []
        keys.append("|".join(names) if names else f"#pair{i}")
    return keys


def label_ids(keys: Sequence[str]) -> tuple[list[int], list[str]]:
    """Label strings -> ``(ids, sorted distinct keys)``; equal keys get equal ids."""
    distinct = sorted(set(keys))
    index = {k: i for i, k in enumerate(distinct)}
    return [index[k] for k in keys], distinct
