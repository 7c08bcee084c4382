"""Ground-truth object crops for transfer evaluation, with the colour the caption states.

Why crops: zero-shot *classification* needs one object per input, and the built-in scenes hold
1-4 objects. Each non-crowd COCO box of a split becomes a square crop ``context`` times its
longer side (1.5: the object plus a margin, as it appears in a training scene), shifted to lie
inside the image. The shape is the box's category; the colour is the one the image's caption
states for that class (:meth:`components.imagetext.data.Concepts.listing_colours`), or None
when the caption does not say (several objects of the class in different colours).

Sources: a curated split name (``test``, ``val``: its curated pairs' images and captions) or
``train_removed``: raw train pairs (``<data.out>/captions/train.jsonl``) that curation removed
because they name a held-out phrase. Pretraining never saw those images, and every one of them
holds a held-out composition, so they give zero-shot many more held-out crops than test alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from components.imagetext.data import Concepts

__all__ = ["TRAIN_REMOVED", "Crop", "square_box", "split_crops", "load_crops"]

TRAIN_REMOVED = "train_removed"


@dataclass(frozen=True)
class Crop:
    """One object: ``image`` relative to ``images/``; ``box`` x0, y0, x1, y1 (square, pixels)."""

    image: str
    source: str
    box: tuple[int, int, int, int]
    shape: str
    colour: str | None


def square_box(bbox: Sequence[float], width: int, height: int, context: float
               ) -> tuple[int, int, int, int]:
    """COCO ``[x, y, w, h]`` -> a square ``context * max(w, h)`` around its centre, moved (not
    clipped) to lie inside the ``width x height`` image (clipped only if larger than it)."""
    x, y, w, h = (float(v) for v in bbox)
    side = min(max(1, round(context * max(w, h))), width, height)
    cx, cy = x + w / 2, y + h / 2
    x0 = int(min(max(0, round(cx - side / 2)), width - side))
    y0 = int(min(max(0, round(cy - side / 2)), height - side))
    return x0, y0, x0 + side, y0 + side


def split_crops(data_root: Path, split: str, captions: Mapping[str, str], concepts: Concepts, *,
                source: str | None = None, context: float = 1.5, min_side: int = 8) -> list[Crop]:
    """Crops of the non-crowd boxes of ``split`` in the images ``captions`` names
    (``{image: caption}``), in COCO order; boxes whose longer side is < ``min_side`` px skipped."""
    from components.data import layout
    from components.data.formats import read_coco

    path = layout.coco_json(data_root, split)
    if not path.is_file():
        raise SystemExit(f"no boxes for split {split!r}: {path} is missing (run `prepare`)")
    coco = read_coco(path)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    images = {img["id"]: img for img in coco["images"] if img["file_name"] in captions}
    colours = {i: concepts.listing_colours(captions[img["file_name"]]) for i, img in images.items()}
    crops = []
    for ann in coco["annotations"]:
        img = images.get(ann["image_id"])
        if img is None or ann.get("iscrowd") or max(ann["bbox"][2:]) < min_side:
            continue
        shape = names[ann["category_id"]]
        crops.append(Crop(img["file_name"], source or split,
                          square_box(ann["bbox"], img["width"], img["height"], context),
                          shape, colours[ann["image_id"]].get(shape)))
    return crops


def load_crops(data_root: Path, crops: Sequence[Crop]) -> list:
    """The crops as RGB PIL images (each source image decoded once)."""
    from PIL import Image

    root = Path(data_root) / "images"
    cache: dict[str, Image.Image] = {}
    out = []
    for crop in crops:
        if crop.image not in cache:
            with Image.open(root / crop.image) as im:
                cache[crop.image] = im.convert("RGB")
        out.append(cache[crop.image].crop(crop.box))
    return out
