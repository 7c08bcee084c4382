"""Hand-made inputs for the curation tests: small images and dataset folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import cv2
import numpy as np
from PIL import Image

SHAPES = ["circle", "triangle", "square", "star"]


def scene(seed: int, size: int = 96) -> np.ndarray:
    """(size, size, 3) uint8: a smooth random background with two filled shapes, so pHash
    sees real low-frequency structure and different seeds give different images."""
    rng = np.random.default_rng(seed)
    low = rng.random((5, 5, 3)).astype(np.float32)
    img = (cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255)
    img = np.ascontiguousarray(img.astype(np.uint8))
    for _ in range(2):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = (int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
        cv2.circle(img, (x, y), int(rng.integers(size // 8, size // 4)), c, -1)
    return img


def save(path: Path, img: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, **kw)
    return path


def make_dataset(root: Path, pairs: Mapping[str, Iterable[tuple[str, str]]],
                 images: Mapping[str, np.ndarray] = {}, classes: list[str] = SHAPES) -> Path:
    """A dataset folder: ``images/<rel>`` written from ``images`` (PNG unless the name says
    .jpg), ``captions/<split>.jsonl`` from ``pairs`` and COCO categories for every split."""
    for rel, img in images.items():
        save(root / "images" / rel, img)
    for split, items in pairs.items():
        cap = root / "captions" / f"{split}.jsonl"
        cap.parent.mkdir(parents=True, exist_ok=True)
        cap.write_text("".join(json.dumps({"image": i, "caption": c}) + "\n" for i, c in items))
        ann = root / "annotations" / f"instances_{split}.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(json.dumps({"images": [], "annotations": [], "categories": [
            {"id": k + 1, "name": n} for k, n in enumerate(classes)]}))
    return root
