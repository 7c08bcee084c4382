"""A tiny dataset and its curated pairs for the image-text tests (no curation stage needed).

``write_curated`` writes the curation contract (``<split>.jsonl`` + ``manifest.json``) from a
dataset's raw captions: labels = the class names a caption names, train pairs naming a
held-out phrase dropped. It is what the curation stage does minus its quality filters.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from components.data.synthetic import generate, tiny_config

SHAPES = ["circle", "triangle", "square", "star"]
TINY_ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_TEXT = {"text_width": 32, "text_depth": 1, "text_heads": 2, "text_max_len": 48,
             "embed_dim": 16, "vocab_size": 400}


def make_dataset(root: Path) -> Path:
    """64 px scenes of the four easy shapes: 24 train, 4 val, 8 test images."""
    generate(root, tiny_config(image_size=64, classes=SHAPES, objects_per_image=[1, 3],
                               scale_range=[0.3, 0.5],
                               num_images={"train": 24, "val": 4, "test": 8, "unlabeled": 0}),
             seed=0)
    return root


def _captions(dataset: Path, split: str) -> list[dict]:
    from components.data.formats import read_captions

    return read_captions(dataset / "captions" / f"{split}.jsonl")


def pick_holdout(dataset: Path, n: int = 2) -> list[str]:
    """``n`` colour-shape compositions the test captions' first sentences name (so zero-shot
    has crops), of different shapes."""
    from components.imagetext.data import Concepts

    concepts = Concepts(SHAPES)
    found: dict[str, str] = {}
    for rec in _captions(dataset, "test"):
        for shape, colour in sorted(concepts.listing_colours(rec["caption"]).items()):
            found.setdefault(shape, f"{colour} {shape}")
    picked = [found[s] for s in sorted(found)][:n]
    assert len(picked) == n, f"test captions name too few compositions: {found}"
    return picked


def write_curated(dataset: Path, out: Path, holdout: Sequence[str]) -> Path:
    from components.curation.labels import PhraseMatcher

    vocab, held = PhraseMatcher(SHAPES), PhraseMatcher(holdout)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        lines = []
        for rec in _captions(dataset, split):
            if split == "train" and held.find(rec["caption"]):
                continue
            digest = hashlib.sha256((dataset / "images" / rec["image"]).read_bytes()).hexdigest()
            lines.append(json.dumps({"image": rec["image"], "caption": rec["caption"],
                                     "labels": vocab.find(rec["caption"]), "sha256": digest}))
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    (out / "manifest.json").write_text(json.dumps({"vocabulary": SHAPES,
                                                   "holdout": list(holdout)}))
    return out
