"""The on-disk layout of a dataset folder: the one contract between data, validation and training.

Every dataset (generated or imported) is a folder::

    <root>/
      manifest.json                          # see components.data.manifest
      images/<split>/...                     # image files; subfolders allowed
      images/unlabeled/...                   # pretraining images (no labels), optional
      annotations/instances_<split>.json     # COCO instances; file_name relative to images/
      openimages/class-descriptions.csv      # LabelName,DisplayName            (optional)
      openimages/<split>-annotations-bbox.csv          # OpenImages V6/V7 bbox columns
      openimages/<split>-annotations-human-imagelabels.csv
      captions/<split>.jsonl                 # {"image": <path rel. to images/>, "caption": str}

COCO JSON is the internal form for detection: OpenImages imports are converted to it (boxes
only) and keep their CSVs for validation and lineage. OpenImages ``ImageID`` maps to
``images/<split>/<ImageID>.jpg``.
"""
from __future__ import annotations

from pathlib import Path

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
UNLABELED = "unlabeled"

MANIFEST = "manifest.json"
IMAGES = "images"
ANNOTATIONS = "annotations"
OPENIMAGES = "openimages"
CAPTIONS = "captions"

OI_CLASSES = "class-descriptions.csv"
OI_BBOX_COLUMNS = (
    "ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
    "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside",
)
OI_LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")


def coco_json(root: Path, split: str) -> Path:
    return Path(root) / ANNOTATIONS / f"instances_{split}.json"


def oi_bbox_csv(root: Path, split: str) -> Path:
    return Path(root) / OPENIMAGES / f"{split}-annotations-bbox.csv"


def oi_labels_csv(root: Path, split: str) -> Path:
    return Path(root) / OPENIMAGES / f"{split}-annotations-human-imagelabels.csv"


def oi_classes_csv(root: Path) -> Path:
    return Path(root) / OPENIMAGES / OI_CLASSES


def captions_jsonl(root: Path, split: str) -> Path:
    return Path(root) / CAPTIONS / f"{split}.jsonl"


def images_dir(root: Path) -> Path:
    return Path(root) / IMAGES
