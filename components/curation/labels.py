"""Class names in captions: the vocabulary, plural forms and word-boundary matching.

Why: UniCL (Florence's image-text-label objective) treats pairs that share a class label as
positives, so each curated pair carries the sorted set of vocabulary classes its caption
names. The same matcher finds held-out phrases (``curation.holdout``) so that training
captions never name what zero-shot transfer is tested on.

Matching is case-insensitive, on whole words (``star`` matches "two stars" and "star-shaped"
but not "starfish"), with the last word of a name in its singular or plural form
("traffic light" also matches "traffic lights"; words in between are one or more spaces).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from components.data import layout
from components.data.formats import read_coco, read_oi_classes

__all__ = ["plural_forms", "PhraseMatcher", "dataset_vocabulary"]

# Irregular plurals of common class names (COCO, OpenImages); the regular rules cover the rest.
_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children",
              "mouse": "mice", "foot": "feet", "tooth": "teeth", "goose": "geese",
              "sheep": "sheep", "fish": "fish", "deer": "deer", "knife": "knives",
              "leaf": "leaves", "wolf": "wolves", "shelf": "shelves", "loaf": "loaves",
              "cactus": "cacti", "bus": "buses", "potato": "potatoes", "tomato": "tomatoes"}
_VOWELS = set("aeiou")


def _plural(word: str) -> str:
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if w.endswith("y") and len(w) > 1 and w[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def plural_forms(name: str) -> list[str]:
    """``name`` and its plural (last word inflected), lowercase, singular first.

    ``"star"`` -> ``["star", "stars"]``, ``"box"`` -> ``["box", "boxes"]``,
    ``"traffic light"`` -> ``["traffic light", "traffic lights"]``, ``"person"`` ->
    ``["person", "people"]``.
    """
    parts = name.lower().split()
    if not parts:
        return []
    plural = " ".join([*parts[:-1], _plural(parts[-1])])
    return list(dict.fromkeys([" ".join(parts), plural]))


def _pattern(name: str) -> str:
    alts = sorted(plural_forms(name), key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in form.split()) for form in alts)
    return rf"(?<![\w])(?:{body})(?![\w])"


class PhraseMatcher:
    """Finds which of ``names`` a text mentions (see the module docstring for the rules).

    Args:
        names: class names or phrases (e.g. ``["star", "red circle"]``); blank ones are
            ignored, duplicates (case-insensitive) kept once, as first given.
    """

    def __init__(self, names: Iterable[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            key = " ".join(name.lower().split())
            if key and key not in seen:
                seen[key] = name.strip()
        self.names = list(seen.values())
        self._patterns = [re.compile(_pattern(n), re.IGNORECASE) for n in self.names]

    def find(self, text: str) -> list[str]:
        """The names ``text`` mentions, sorted."""
        return sorted(n for n, p in zip(self.names, self._patterns) if p.search(text))

    def forms(self) -> list[str]:
        """Every singular and plural form (for the English-word list)."""
        return [f for n in self.names for f in plural_forms(n)]

    def __bool__(self) -> bool:
        return bool(self.names)


def dataset_vocabulary(root: Path, splits: Iterable[str]) -> tuple[list[str], str]:
    """The dataset's class names and where they came from.

    COCO categories of ``annotations/instances_<split>.json`` (train first, the names of
    every split file in order of first appearance), else the DisplayNames of
    ``openimages/class-descriptions.csv``, else none (``[]``, ``"none"``).
    """
    root = Path(root)
    order = sorted(dict.fromkeys(splits), key=lambda s: s != "train")
    files = [layout.coco_json(root, s) for s in order if layout.coco_json(root, s).is_file()]
    if files:
        names: dict[str, None] = {}
        for f in files:
            for cat in read_coco(f)["categories"]:
                name = str(cat["name"]).strip()
                if name:
                    names.setdefault(name)
        return list(names), ", ".join(f.relative_to(root).as_posix() for f in files)
    classes = layout.oi_classes_csv(root)
    if classes.is_file():
        names = [display for _, display in read_oi_classes(classes) if display]
        return list(dict.fromkeys(names)), classes.relative_to(root).as_posix()
    return [], "none"
