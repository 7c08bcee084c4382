"""Datasets for the validation gate tests.

``base_dataset``: one tiny synthetic dataset per session (the real generator: COCO + OpenImages
CSVs + captions, 64 px); each test gets its own copy (``dataset``) to corrupt.
``unusual_dataset``: hand-made, valid-but-unusual data the generator never produces.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.synthetic import generate, tiny_config


@pytest.fixture(scope="session")
def base_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("validation-base") / "ds"
    # crowd_fraction 0.5 -> train gets crowd RLE regions, so valid crowd data is always covered
    cfg = tiny_config(image_size=64, crowd_fraction=0.5,
                      num_images={"train": 3, "val": 1, "test": 1, "unlabeled": 0})
    generate(root, cfg, seed=0)
    return root


@pytest.fixture
def dataset(base_dataset: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(base_dataset, root, symlinks=True)
    return root


# ---------------------------------------------------------------------------- unusual-but-valid
@pytest.fixture
def unusual_dataset(tmp_path: Path) -> Path:
    """Grayscale PNG, RGBA PNG, EXIF-rotated JPEG (record = post-rotation size), an image with
    no annotations, id 0 everywhere, a crowd RLE (string and list counts), a subfolder
    file_name, a headerless OpenImages class file (as OpenImages ships it)."""
    from pycocotools import mask as mask_utils

    root = tmp_path / "unusual"
    img = root / "images" / "train"
    (img / "sub" / "dir").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8), "L").save(img / "gray.png")
    rgba = rng.integers(0, 255, (32, 32, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(img / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6                              # rotate 90 CW: stored 40x24 shows as 24x40
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(
        img / "exif.jpg", exif=exif.tobytes())
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
        img / "sub" / "dir" / "nested.jpg")
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(img / "empty.jpg")

    mask = np.zeros((40, 24), dtype=np.uint8, order="F")
    mask[5:20, 3:15] = 1
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    coco = {
        "images": [
            {"id": 0, "file_name": "train/gray.png", "width": 40, "height": 30},
            {"id": 1, "file_name": "train/rgba.png", "width": 32, "height": 32},
            {"id": 2, "file_name": "train/exif.jpg", "width": 24, "height": 40},
            {"id": 3, "file_name": "train/sub/dir/nested.jpg", "width": 20, "height": 20},
            {"id": 4, "file_name": "train/empty.jpg", "width": 16, "height": 16},
        ],
        "categories": [{"id": 0, "name": "thing"}, {"id": 1, "name": "stuff"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "bbox": [0, 0, 40, 30], "area": 1200,
             "iscrowd": 0, "segmentation": [[0, 0, 40, 0, 40, 30, 0, 30]]},
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.5, 3.5, 10, 12.25],
             "area": 100.5, "iscrowd": 0, "segmentation": [[2.5, 3.5, 12.5, 3.5, 12.5, 15.75]]},
            {"id": 2, "image_id": 2, "category_id": 0, "bbox": [3, 5, 12, 15], "area": 180,
             "iscrowd": 1, "segmentation": rle},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [-0.5, 0, 20.5, 20.4], "area": 300,
             "iscrowd": 1, "segmentation": {"size": [20, 20], "counts": [0, 200, 200]}},
        ],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text(json.dumps(coco))
    (root / "openimages").mkdir()
    (root / "openimages" / "class-descriptions.csv").write_text("/m/0a,Thing\n/m/0b,Stuff\n")
    shutil.copyfile(img / "sub" / "dir" / "nested.jpg", img / "oi0.jpg")
    (root / "openimages" / "train-annotations-bbox.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
        "IsGroupOf,IsDepiction,IsInside\n"
        "oi0,human,/m/0a,1,0,1,0,1,0,0,0,0,0\noi0,human,/m/0b,1,0.1,0.2,0.3,0.4,1,0,1,0,0\n")
    (root / "captions").mkdir()
    captions = [
        {"image": "train/sub/dir/nested.jpg", "caption": "Ein Würfel – ünïcödé ✓ 猫"},
        {"image": "train/gray.png", "caption": "a gray picture"},
        {"image": "train/sub/dir/nested.jpg", "caption": "the same image, another caption"},
    ]
    (root / "captions" / "train.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in captions), encoding="utf-8")
    return root
