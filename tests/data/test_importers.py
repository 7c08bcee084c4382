"""Round trips: a generated dataset, re-imported through each importer."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from components.data import layout
from components.data.formats import DataFormatError, read_captions, read_coco, read_csv
from components.data.importers import IMPORTERS, UnsafePathError, get_importer
from components.data.importers import import_coco, import_imagetext, import_openimages
from components.data.manifest import read_manifest


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = np.asfortranarray(mask).ravel(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture()
def coco_source(tiny_ds: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A user-style COCO folder: a subfolder file_name, an unannotated image, RLE masks."""
    src = tmp_path / "src"
    shutil.copytree(tiny_ds / "images/train", src / "imgs")
    (src / "imgs/sub").mkdir()
    shutil.move(src / "imgs/000001.jpg", src / "imgs/sub/000001.jpg")
    shutil.copyfile(src / "imgs/000002.jpg", src / "imgs/empty.jpg")
    coco = read_coco(layout.coco_json(tiny_ds, "train"))
    for img in coco["images"]:
        img["file_name"] = img["file_name"].split("/", 1)[1]
    coco["images"][0]["file_name"] = "sub/000001.jpg"
    coco["images"].append({"id": 999, "file_name": "empty.jpg", "width": 128, "height": 128})
    plain = [a for a in coco["annotations"] if not a["iscrowd"]]
    for ann, kind in zip(plain[:2], ("uncompressed", "compressed")):
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 128, 128)))
        if kind == "uncompressed":
            ann["segmentation"] = _uncompressed_rle(m)
        else:
            rle = mask_utils.encode(np.asfortranarray(m))
            ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    ann_path = src / "instances_train.json"
    ann_path.write_text(json.dumps(coco))
    return ann_path, src / "imgs"


def test_registry_sweep():
    assert set(IMPORTERS) == {"coco", "openimages", "imagetext"}
    for name in IMPORTERS:
        assert get_importer(name) is IMPORTERS[name]
    with pytest.raises(KeyError, match="unknown data source"):
        get_importer("lvis")


def test_coco_round_trip(coco_source, tiny_ds, tmp_path):
    ann_path, images = coco_source
    manifest = import_coco(tmp_path / "out", {"train": ann_path}, {"train": images})
    out = tmp_path / "out"
    assert read_manifest(out) == manifest
    src = read_coco(ann_path)
    s = manifest["splits"]["train"]
    assert s["images"] == len(src["images"]) == read_manifest(tiny_ds)["splits"]["train"]["images"] + 1
    assert s["annotations"] == len(src["annotations"])
    assert s["crowd"] == read_manifest(tiny_ds)["splits"]["train"]["crowd"]
    assert manifest["source"] == {"kind": "coco", "annotations": {"train": str(ann_path)},
                                  "images": {"train": str(images)}, "masks": "as-given"}
    assert (out / "images/train/sub/000001.jpg").read_bytes() == (images / "sub/000001.jpg").read_bytes()
    coco = COCO(str(layout.coco_json(out, "train")))
    assert coco.imgs[1]["file_name"] == "train/sub/000001.jpg"
    assert coco.imgs[999]["file_name"] == "train/empty.jpg" and coco.getAnnIds(imgIds=[999]) == []
    assert [a["id"] for a in coco.dataset["annotations"]] == [a["id"] for a in src["annotations"]]
    for ann in coco.dataset["annotations"]:  # polygons, both RLE kinds and crowd all decode
        assert int(coco.annToMask(ann).sum()) == ann["area"]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.jpg")) == sorted(manifest["files"])


@pytest.mark.parametrize("bad", ["../escape.jpg", "sub/../../escape.jpg", "/etc/hostname", "link/escape.jpg"])
def test_coco_refuses_paths_outside_the_image_folder(coco_source, tmp_path, bad):
    ann_path, images = coco_source
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "escape.jpg").write_bytes(b"x")
    (images / "link").symlink_to(outside)
    coco = read_coco(ann_path)
    coco["images"][3]["file_name"] = bad
    ann_path.write_text(json.dumps(coco))
    with pytest.raises(UnsafePathError, match=rf"images\[id=4\]: file name '{bad}'"):
        import_coco(tmp_path / "out", {"train": ann_path}, images)
    assert not (tmp_path / "out").exists()  # atomic: nothing half-written


def test_coco_missing_image_is_a_clear_error(coco_source, tmp_path):
    ann_path, images = coco_source
    (images / "empty.jpg").unlink()
    with pytest.raises(DataFormatError, match=r"images\[id=999\]: image file .*empty.jpg not found"):
        import_coco(tmp_path / "out", {"train": ann_path}, images)


@pytest.mark.parametrize("header", [True, False])
def test_openimages_round_trip(tiny_ds, tmp_path, header):
    oi = tiny_ds / "openimages"
    classes = tmp_path / "classes.csv"
    lines = layout.oi_classes_csv(tiny_ds).read_text().splitlines(keepends=True)
    classes.write_text("".join(lines if header else lines[1:]))
    splits = ("train", "val")
    manifest = import_openimages(
        tmp_path / "out", classes, {s: oi / f"{s}-annotations-bbox.csv" for s in splits},
        {s: tiny_ds / "images" / s for s in splits},
        {s: oi / f"{s}-annotations-human-imagelabels.csv" for s in splits})
    out = tmp_path / "out"
    assert manifest["source"]["masks"] == "box-derived"
    orig = read_manifest(tiny_ds)
    for s in splits:
        assert manifest["splits"][s]["images"] == orig["splits"][s]["images"]
        assert manifest["splits"][s]["annotations"] == orig["splits"][s]["annotations"]
        assert manifest["splits"][s]["crowd"] == orig["splits"][s]["crowd"]
        assert {k: v for k, v in manifest["splits"][s]["classes"].items() if v} == \
            {k: v for k, v in orig["splits"][s]["classes"].items() if v}
        assert (out / "openimages" / f"{s}-annotations-bbox.csv").read_bytes() == \
            (oi / f"{s}-annotations-bbox.csv").read_bytes()
        new, old = COCO(str(layout.coco_json(out, s))), read_coco(layout.coco_json(tiny_ds, s))
        for a, b in zip(new.dataset["annotations"], old["annotations"]):
            assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-3)
            assert a["iscrowd"] == b["iscrowd"]
            assert new.annToMask(a).sum() == pytest.approx(a["bbox"][2] * a["bbox"][3], abs=2 * sum(a["bbox"][2:]))
    assert read_csv(layout.oi_classes_csv(out), ["LabelName", "DisplayName"])


def test_openimages_unknown_label_and_missing_column(tiny_ds, tmp_path):
    bbox = tmp_path / "bbox.csv"
    rows = list(csv.reader(open(tiny_ds / "openimages/train-annotations-bbox.csv")))
    rows[1][2] = "/m/nope"
    with open(bbox, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DataFormatError, match=r"bbox.csv:2: LabelName '/m/nope'"):
        import_openimages(tmp_path / "out", layout.oi_classes_csv(tiny_ds), {"train": bbox},
                          tiny_ds / "images/train")
    with open(bbox, "w", newline="") as fh:
        csv.writer(fh).writerows([r[:4] for r in rows])
    with pytest.raises(DataFormatError, match=r"missing required column\(s\) \['XMin', 'XMax', 'YMin', 'YMax'\]"):
        import_openimages(tmp_path / "out", layout.oi_classes_csv(tiny_ds), {"train": bbox},
                          tiny_ds / "images/train")


def test_imagetext_jsonl_and_csv(tiny_ds, tmp_path):
    caps = read_captions(layout.captions_jsonl(tiny_ds, "train"))
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"image_path": c["image"], "text": c["caption"]}) + "\n" for c in caps))
    with open(tmp_path / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "caption"])
        w.writerows([c["image"], c["caption"]] for c in caps[:3])
        w.writerow([caps[0]["image"], "a second caption for the same image"])
    manifest = import_imagetext(tmp_path / "out", {"train": jsonl, "val": tmp_path / "pairs.csv"},
                                tiny_ds / "images")
    out = tmp_path / "out"
    assert manifest["captions"] == {"train": len(caps), "val": 4}
    assert manifest["splits"]["val"]["images"] == 3  # the repeated image is copied once
    got = read_captions(layout.captions_jsonl(out, "train"))
    assert [g["caption"] for g in got] == [c["caption"] for c in caps]
    assert got[0]["image"] == "train/" + caps[0]["image"]
    assert (out / "images" / got[0]["image"]).read_bytes() == (tiny_ds / "images" / caps[0]["image"]).read_bytes()


def test_imagetext_errors(tiny_ds, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"image": "train/000001.jpg"}\n')
    with pytest.raises(DataFormatError, match=r"p.jsonl:1: record needs an image key"):
        import_imagetext(tmp_path / "out", {"train": tmp_path / "p.jsonl"}, tiny_ds / "images")
    (tmp_path / "p.csv").write_text("path,caption\nx.jpg,hello\n")
    with pytest.raises(DataFormatError, match="needs an image column"):
        import_imagetext(tmp_path / "out", {"train": tmp_path / "p.csv"}, tiny_ds / "images")
    (tmp_path / "q.jsonl").write_text('{"image": "../ds/images/train/000001.jpg", "caption": "x"}\n')
    with pytest.raises(UnsafePathError, match="q.jsonl:1"):
        import_imagetext(tmp_path / "out", {"train": tmp_path / "q.jsonl"}, tiny_ds / "images")
