from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from components.data import layout
from components.data.formats import read_captions, read_coco, read_csv, read_oi_classes
from components.data.manifest import read_manifest, sha256_file
from components.data.synthetic import SHAPES, generate, render_scene, tiny_config
from components.data.synthetic.captions import COUNT_WORDS
from components.data.synthetic.scene import min_visible_area
from components.data.synthetic.shapes import PLURAL


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(tiny_ds, tiny_cfg, tmp_path):
    again = generate(tmp_path / "again", tiny_cfg, seed=0, workers=1)
    assert again["content_hash"] == read_manifest(tiny_ds)["content_hash"]
    assert _tree(tmp_path / "again") == _tree(tiny_ds)


def test_worker_processes_do_not_change_the_result(tiny_ds, tmp_path):
    cfg = tiny_config(image_size=128, crowd_fraction=0.5,
                      num_images={"train": 8, "val": 4, "test": 4, "unlabeled": 3})
    parallel = generate(tmp_path / "par", cfg, seed=0, workers=2)
    assert parallel["content_hash"] == read_manifest(tiny_ds)["content_hash"]


def test_different_seed_differs(tiny_ds, tiny_cfg, tmp_path):
    other = generate(tmp_path / "other", tiny_cfg, seed=1)
    assert other["content_hash"] != read_manifest(tiny_ds)["content_hash"]
    a = (tiny_ds / "images/train/000001.jpg").read_bytes()
    b = (tmp_path / "other/images/train/000001.jpg").read_bytes()
    assert a != b


def test_split_counts_and_objects_per_image(tiny_ds, tiny_cfg):
    lo, hi = tiny_cfg["objects_per_image"]
    for split in layout.SPLITS:
        coco = read_coco(layout.coco_json(tiny_ds, split))
        assert len(coco["images"]) == tiny_cfg["num_images"][split]
        per_image = Counter(a["image_id"] for a in coco["annotations"] if not a["iscrowd"])
        for img in coco["images"]:
            assert lo <= per_image[img["id"]] <= hi, img
            assert img["file_name"] == f"{split}/{img['id']:06d}.jpg"
            assert (tiny_ds / "images" / img["file_name"]).is_file()
    unlabeled = sorted((tiny_ds / "images/unlabeled").iterdir())
    assert len(unlabeled) == tiny_cfg["num_images"]["unlabeled"]
    assert read_manifest(tiny_ds)["unlabeled"] == len(unlabeled)


def test_coco_json_loads_and_masks_are_exact(tiny_ds):
    size = 128
    for split in layout.SPLITS:
        coco = COCO(str(layout.coco_json(tiny_ds, split)))
        assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(SHAPES)
        assert min(coco.getCatIds()) == 1
        for ann in coco.loadAnns(coco.getAnnIds()):
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= size and y + h <= size
            mask = coco.annToMask(ann)
            assert mask.shape == (size, size)
            # the stored polygons/RLE rasterise back to exactly the visible pixels
            assert int(mask.sum()) == ann["area"], ann["id"]
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()] == [x, y, w, h]
            if ann["iscrowd"]:
                assert isinstance(ann["segmentation"]["counts"], str)
                assert ann["segmentation"]["size"] == [size, size]
            else:
                assert ann["segmentation"] and all(len(p) >= 6 for p in ann["segmentation"])
            assert ann["area"] >= min_visible_area(size)


def test_annotations_are_the_rendered_visible_masks(tiny_ds, tiny_cfg):
    """Re-render train image 1 from its seed: each stored annotation rasterises to exactly
    that object's visible mask, in draw order (crowd first)."""
    from components.data.synthetic.generator import _image_rng

    coco = COCO(str(layout.coco_json(tiny_ds, "train")))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    scene = render_scene(_image_rng(0, "train", 0), tiny_cfg, crowd=any(a["iscrowd"] for a in anns))
    assert [o.category for o in scene.objects] == [coco.cats[a["category_id"]]["name"] for a in anns]
    for ann, obj in zip(anns, scene.objects):
        assert np.array_equal(coco.annToMask(ann), obj.visible)


def test_scene_respects_occlusion_and_masks_are_disjoint():
    cfg = tiny_config(image_size=128, occlusion=0.3, objects_per_image=[6, 10])
    for i in range(6):
        scene = render_scene(np.random.default_rng(i), cfg, crowd=i % 2 == 0)
        stack = np.stack([o.visible for o in scene.objects]).astype(int)
        assert stack.sum(0).max() <= 1  # each pixel shows at most one object
        for o in scene.objects:
            assert o.visible_area == int(o.visible.sum())
            assert o.visible_area >= 0.7 * o.drawn_area - 1e-9
            assert o.visible_area >= min_visible_area(128)


def test_crowd_regions(tiny_ds, tiny_cfg):
    total = 0
    for split in layout.SPLITS:
        coco = read_coco(layout.coco_json(tiny_ds, split))
        crowd = [a for a in coco["annotations"] if a["iscrowd"]]
        assert len(crowd) == round(tiny_cfg["crowd_fraction"] * tiny_cfg["num_images"][split])
        assert len({a["image_id"] for a in crowd}) == len(crowd)  # at most one per image
        for a in crowd:
            m = mask_utils.decode(a["segmentation"])
            assert m.shape == (128, 128) and int(m.sum()) == a["area"]
        total += len(crowd)
    assert total > 0


def test_openimages_csvs(tiny_ds):
    classes = read_oi_classes(layout.oi_classes_csv(tiny_ds))
    assert [d for _, d in classes] == list(SHAPES)
    assert all(label.startswith("/m/syn_") for label, _ in classes)
    for split in layout.SPLITS:
        coco = read_coco(layout.coco_json(tiny_ds, split))
        rows = read_csv(layout.oi_bbox_csv(tiny_ds, split), layout.OI_BBOX_COLUMNS)
        assert len(rows) == len(coco["annotations"])
        for row, ann in zip(rows, coco["annotations"]):
            xmin, xmax, ymin, ymax = (float(row[k]) for k in ("XMin", "XMax", "YMin", "YMax"))
            assert 0 <= xmin < xmax <= 1 and 0 <= ymin < ymax <= 1
            x, y, w, h = ann["bbox"]
            assert xmin * 128 == pytest.approx(x, abs=1e-3) and xmax * 128 == pytest.approx(x + w, abs=1e-3)
            assert row["IsGroupOf"] == str(ann["iscrowd"])
            image = next(i for i in coco["images"] if i["id"] == ann["image_id"])
            assert image["file_name"] == f"{split}/{row['ImageID']}.jpg"
        assert {r["IsOccluded"] for r in rows} <= {"0", "1"}
        labels = read_csv(layout.oi_labels_csv(tiny_ds, split), layout.OI_LABEL_COLUMNS)
        expected = {(r["ImageID"], r["LabelName"]) for r in rows}
        assert {(r["ImageID"], r["LabelName"]) for r in labels} == expected
        assert {r["Confidence"] for r in labels} == {"1"}


def test_some_objects_are_occluded_and_truncated(tmp_path):
    generate(tmp_path / "ds", tiny_config(image_size=128, num_images={"train": 12}), seed=0)
    rows = read_csv(layout.oi_bbox_csv(tmp_path / "ds", "train"))
    assert any(r["IsOccluded"] == "1" for r in rows)
    assert any(r["IsTruncated"] == "1" for r in rows)


_COUNT = {w: i for i, w in enumerate(COUNT_WORDS)}


def test_captions_describe_real_content(tiny_ds):
    checked = 0
    for split in layout.SPLITS:
        coco = read_coco(layout.coco_json(tiny_ds, split))
        names = {c["id"]: c["name"] for c in coco["categories"]}
        caps = {c["image"]: c["caption"] for c in read_captions(layout.captions_jsonl(tiny_ds, split))}
        assert set(caps) == {i["file_name"] for i in coco["images"]}
        for img in coco["images"]:
            anns = [a for a in coco["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]]
            counts = Counter(names[a["category_id"]] for a in anns)
            text = caps[img["file_name"]]
            for cls in SHAPES:
                for word in re.findall(rf"\b({'|'.join(COUNT_WORDS)}) (?:\w+ )?{PLURAL[cls]}\b", text):
                    assert _COUNT[word] == counts[cls], (text, counts)
                    checked += 1
                if counts[cls]:
                    assert cls in text, (text, counts)
            total = re.search(r"There (?:is|are) (\w+) shapes?", text)
            if total:
                assert _COUNT[total.group(1)] == len(anns)
    assert checked > 0


def test_jpeg_images_decode_to_the_configured_size(tiny_ds):
    img = cv2.imread(str(tiny_ds / "images/val/000001.jpg"))
    assert img.shape == (128, 128, 3)


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(KeyError, match="unknown key"):
        generate(tmp_path / "x", {"image_sise": 64})
    with pytest.raises(ValueError, match="objects_per_image"):
        generate(tmp_path / "x", {"objects_per_image": [5, 2]})
    assert not (tmp_path / "x").exists()
