"""Captions that describe what a synthetic scene really contains.

Why generated from the scene: image-text pretraining (Florence-style) needs captions whose
words are grounded in the pixels, so a model can learn counts, colours, sizes and spatial
relations. Every statement here is true of the rendered scene: per-class counts are exact
(crowd groups are described separately, never counted), colours are the painted palette
colour, relations compare visible-mask centres. Templates vary, chosen by the scene's RNG.
"""
from __future__ import annotations

import numpy as np

from components.data.synthetic.scene import Scene, SceneObject
from components.data.synthetic.shapes import PLURAL

__all__ = ["caption", "COUNT_WORDS"]

COUNT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
               "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
               "seventeen", "eighteen", "nineteen", "twenty")


def _count(n: int) -> str:
    return COUNT_WORDS[n] if n < len(COUNT_WORDS) else str(n)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _one(obj: SceneObject, with_size: bool) -> str:
    words = ([obj.size] if with_size else []) + [obj.colour, obj.category]
    return f"{_article(words[0])} {' '.join(words)}"


def _region(x: float, y: float, size: int) -> str:
    col = "left" if x < size / 3 else "right" if x > 2 * size / 3 else ""
    row = "top" if y < size / 3 else "bottom" if y > 2 * size / 3 else ""
    if not col and not row:
        return "the centre"
    if not row:
        return f"the {col} side"
    return "the " + " ".join(w for w in (row, col) if w)


def _group_phrase(objs: list[SceneObject], rng: np.random.Generator) -> str:
    """"three circles" / "two red squares" / "a small blue star" for one class."""
    if len(objs) == 1:
        return _one(objs[0], with_size=rng.random() < 0.5)
    colours = {o.colour for o in objs}
    colour = f"{objs[0].colour} " if len(colours) == 1 else ""
    return f"{_count(len(objs))} {colour}{PLURAL[objs[0].category]}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _relation(a: SceneObject, b: SceneObject, verb: str) -> str:
    (ax, ay), (bx, by) = a.centre(), b.centre()
    dx, dy = bx - ax, by - ay
    if abs(dx) >= abs(dy):
        rel = "to the left of" if dx > 0 else "to the right of"
    else:
        rel = "above" if dy > 0 else "below"
    return f"{_one(a, True)} {verb} {rel} {_one(b, True)}"


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption for ``scene``; deterministic given ``rng``'s state."""
    objects = [o for o in scene.objects if not o.iscrowd]
    crowd = [o for o in scene.objects if o.iscrowd]
    size = scene.image.shape[0]
    by_class: dict[str, list[SceneObject]] = {}
    for o in objects:
        by_class.setdefault(o.category, []).append(o)
    order = sorted(by_class, key=lambda c: (-len(by_class[c]), c))
    listing = _join([_group_phrase(by_class[c], rng) for c in order]) if order else "no distinct shapes"
    total = len(objects)

    intro = rng.integers(5)
    if intro == 0:
        sentence = f"A picture of {listing}"
    elif intro == 1:
        sentence = f"An image showing {listing}"
    elif intro == 2:
        noun = "shape" if total == 1 else "shapes"
        sentence = f"There {'is' if total == 1 else 'are'} {_count(total)} {noun}: {listing}"
    elif intro == 3:
        sentence = f"{listing[0].upper()}{listing[1:]} on a {scene.background} background"
    else:
        sentence = f"A {scene.background} scene with {listing}"
    sentences = [sentence + "."]

    if len(by_class) >= 2 and rng.random() < 0.8:
        c1, c2 = rng.choice(order, 2, replace=False)
        a = by_class[c1][rng.integers(len(by_class[c1]))]
        b = by_class[c2][rng.integers(len(by_class[c2]))]
        rel = _relation(a, b, ('is', 'sits', 'appears')[rng.integers(3)])
        sentences.append(rel[0].upper() + rel[1:] + ".")
    if crowd:
        g = crowd[0]
        x, y = g.centre()
        sentences.append(f"A dense cluster of small {g.colour} {PLURAL[g.category]} fills {_region(x, y, size)}.")
    elif objects and rng.random() < 0.4:
        biggest = max(objects, key=lambda o: o.visible_area)
        x, y = biggest.centre()
        sentences.append(f"The largest shape, {_one(biggest, False)}, is in {_region(x, y, size)}.")
    return " ".join(sentences)
