"""Reading a dataset split for BING: image records with their boxes, and images with their hash.

Reads the folder contract of :mod:`components.data.layout`
(``annotations/instances_<split>.json``, ``file_name`` relative to ``images/``). COCO crowd
regions (``iscrowd: 1``) are kept apart: they are neither positives nor recall targets, and
negatives may not overlap them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from components.data import layout
from components.data.formats import read_coco

__all__ = ["ImageRecord", "ImageReadError", "read_split", "read_image", "decode_image", "read_bytes",
           "file_sha256", "LazyImages", "records_hash"]


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or not a decodable image."""


@dataclass(frozen=True)
class ImageRecord:
    """One annotated image: ``file_name`` relative to ``images/``; boxes ``(G, 4)`` x1, y1, x2, y2."""

    file_name: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    crowd: np.ndarray


def read_split(root: str | Path, split: str, max_images: int = 0) -> list[ImageRecord]:
    """The images of ``split`` in annotation-file order (the first ``max_images`` if > 0)."""
    root = Path(root)
    path = layout.coco_json(root, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"no annotations for split {split!r}: {path} is missing (run the prepare stage, "
            "`python -m components.data prepare --params params.yaml`, or point data.out at a "
            "dataset folder)")
    coco = read_coco(path)
    boxes: dict = {}
    crowd: dict = {}
    for ann in coco["annotations"]:
        bbox = ann.get("bbox")
        if not bbox or len(bbox) != 4:
            continue
        x, y, w, h = (float(v) for v in bbox)
        (crowd if ann.get("iscrowd") else boxes).setdefault(ann["image_id"], []).append(
            [x, y, x + w, y + h])
    images = coco["images"][:max_images] if max_images > 0 else coco["images"]
    base = layout.images_dir(root)
    return [ImageRecord(file_name=str(img["file_name"]), path=base / str(img["file_name"]),
                        width=int(img.get("width") or 0), height=int(img.get("height") or 0),
                        boxes=np.asarray(boxes.get(img["id"], []), np.float64).reshape(-1, 4),
                        crowd=np.asarray(crowd.get(img["id"], []), np.float64).reshape(-1, 4))
            for img in images]


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from None


def decode_image(data: bytes, path: str | Path) -> np.ndarray:
    """Encoded bytes -> ``(H, W, 3)`` uint8 RGB; an :class:`ImageReadError` naming ``path``."""
    # raw pixel layout, as PIL and the COCO boxes see it (no EXIF rotation)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if arr is None:
        raise ImageReadError(f"cannot decode image {path} ({len(data)} bytes): the file is corrupt "
                             "or not an image; replace or remove it and re-run")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> tuple[np.ndarray, str]:
    """``(RGB uint8 (H, W, 3), sha256 of the file)``."""
    data = read_bytes(Path(path))
    return decode_image(data, path), hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(read_bytes(Path(path))).hexdigest()


class LazyImages(Sequence):
    """The records' images, decoded on access (each call reads the file again), with the
    sha256 of every file read so far in ``hashes`` (file_name -> sha256)."""

    def __init__(self, records: Sequence[ImageRecord]):
        self.records = list(records)
        self.hashes: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):  # type: ignore[override]
        rec = self.records[i]
        image, sha = read_image(rec.path)
        self.hashes[rec.file_name] = sha
        return image


def records_hash(hashes: dict[str, str]) -> str:
    """One sha256 over ``{file_name: sha256}`` (sorted): the images a model was trained on."""
    blob = "\n".join(f"{name}\t{sha}" for name, sha in sorted(hashes.items()))
    return hashlib.sha256(blob.encode()).hexdigest()
