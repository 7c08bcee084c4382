"""Images for pretraining: listing, image-level labels, a small dataset, content hashing.

Reads the dataset folder contract of :mod:`components.data.layout`: unlabeled images under
``images/unlabeled/``; image-level labels from ``openimages/<split>-annotations-human-
imagelabels.csv`` (``ImageID`` -> ``images/<split>/<ImageID>.<ext>``) or, when a dataset has no
such CSV (COCO imports), the categories present in ``annotations/instances_<split>.json``.

Transforms use torchvision and are imported lazily, so the model files stay torch-only.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from components.data import layout
from components.pretrain.common import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGE_EXTS", "list_images", "unlabeled_images", "image_level_labels", "images_hash",
           "ImageDataset", "basic_transform", "normalize"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted for a deterministic order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def unlabeled_images(root: Path, max_images: int = 0) -> list[Path]:
    """The pretraining images ``<root>/images/unlabeled/``; a clear error if there are none."""
    folder = layout.images_dir(root) / layout.UNLABELED
    paths = list_images(folder)
    if not paths:
        raise SystemExit(f"no pretraining images in {folder}: run the `prepare` stage first "
                         "(python -m components.data prepare --params params.yaml), or point "
                         "data.out in params.yaml at a dataset with images/unlabeled/")
    return paths[:max_images] if max_images > 0 else paths


def image_level_labels(root: Path, split: str = "train", max_images: int = 0
                       ) -> tuple[list[Path], torch.Tensor, list[str]]:
    """``(image paths, (N, K) float 0/1 targets, K class names)`` for a labelled split.

    OpenImages human-verified image-level labels when the CSV exists (``Confidence`` >= 0.5 is a
    positive; verified negatives and absent labels are 0); otherwise the COCO categories present
    in each image. Images without a file are an error naming the record.
    """
    root = Path(root)
    csv_path = layout.oi_labels_csv(root, split)
    split_dir = layout.images_dir(root) / split
    labels: dict[str, set[str]] = {}
    files: dict[str, Path] = {}
    if csv_path.is_file():
        by_stem = {p.stem: p for p in list_images(split_dir)}
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    image_id, name, conf = row["ImageID"], row["LabelName"], float(row["Confidence"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise SystemExit(f"{csv_path}:{line}: needs ImageID, LabelName and a numeric "
                                     f"Confidence ({exc})") from None
                if image_id not in by_stem:
                    raise SystemExit(f"{csv_path}:{line}: ImageID {image_id!r} has no image in "
                                     f"{split_dir} (expected {image_id}.jpg)")
                files[image_id] = by_stem[image_id]
                positives = labels.setdefault(image_id, set())
                if conf >= 0.5:
                    positives.add(name)
        classes = sorted({n for pos in labels.values() for n in pos})
    else:
        coco_path = layout.coco_json(root, split)
        if not coco_path.is_file():
            raise SystemExit(f"no image-level labels for split {split!r}: neither {csv_path} nor "
                             f"{coco_path} exists; run the `prepare` stage first")
        coco = json.loads(coco_path.read_text())
        names = {c["id"]: c["name"] for c in coco.get("categories", [])}
        for img in coco.get("images", []):
            key = str(img["id"])
            files[key] = layout.images_dir(root) / img["file_name"]  # as the detector reads it
            labels[key] = set()
        for ann in coco.get("annotations", []):
            labels[str(ann["image_id"])].add(names[ann["category_id"]])
        classes = sorted(names.values())
    keys = sorted(files)
    if max_images > 0:
        keys = keys[:max_images]
    if not keys or not classes:
        raise SystemExit(f"split {split!r} under {root} has no labelled images; run `prepare`")
    index = {c: i for i, c in enumerate(classes)}
    targets = torch.zeros(len(keys), len(classes))
    for row, key in enumerate(keys):
        for name in labels[key]:
            targets[row, index[name]] = 1.0
    return [files[k] for k in keys], targets, classes


def images_hash(paths: Sequence[Path], root: Path) -> str:
    """``sha256:<hex>`` over the sorted (relative path, file sha256) pairs actually used."""
    outer = hashlib.sha256()
    root = Path(root).resolve()
    for path in sorted(Path(p).resolve() for p in paths):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        outer.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + outer.hexdigest()


class ImageDataset(Dataset):
    """RGB images through a per-method transform; optional per-image target vectors.

    ``transform(PIL.Image) -> dict[str, Tensor]``; ``targets`` adds ``"targets"`` (K,) to it.
    Decoded images are cached in memory (the CPU default set is ~300 small images).
    """

    def __init__(self, paths: Sequence[Path], transform: Callable, targets: torch.Tensor | None = None,
                 cache: bool = True) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.targets = targets
        self._cache: dict[int, object] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, i: int):
        from PIL import Image

        if self._cache is not None and i in self._cache:
            return self._cache[i]
        try:
            with Image.open(self.paths[i]) as im:
                img = im.convert("RGB")
        except OSError as exc:
            raise SystemExit(f"cannot read image {self.paths[i]}: {exc} (re-run `prepare`/"
                             "`validate`)") from None
        if self._cache is not None:
            self._cache[i] = img
        return img

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = dict(self.transform(self._load(i)))
        if self.targets is not None:
            out["targets"] = self.targets[i]
        return out


def normalize():
    from torchvision import transforms as T

    return T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def basic_transform(img_size: int, scale: tuple[float, float] = (0.2, 1.0)) -> Callable:
    """Random resized crop + horizontal flip + normalise -> ``{"image": (3, S, S)}`` (MAE, BEiT,
    supervised)."""
    from torchvision import transforms as T

    pipe = T.Compose([
        T.RandomResizedCrop(img_size, scale=tuple(scale), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        normalize(),
    ])
    return lambda img: {"image": pipe(img)}
