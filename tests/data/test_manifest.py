from __future__ import annotations

import json
import shutil

import pytest

from components.data import layout
from components.data.formats import DataFormatError, read_coco
from components.data.manifest import read_manifest, sha256_file, write_manifest


def test_manifest_counts_and_files(tiny_ds, tiny_cfg):
    m = read_manifest(tiny_ds)
    assert m["schema_version"] == layout.SCHEMA_VERSION
    assert m["source"]["kind"] == "synthetic" and m["source"]["masks"] == "exact"
    assert m["source"]["params"]["image_size"] == tiny_cfg["image_size"]
    for split in layout.SPLITS:
        coco = read_coco(layout.coco_json(tiny_ds, split))
        s = m["splits"][split]
        assert s["images"] == len(coco["images"]) and s["annotations"] == len(coco["annotations"])
        assert s["crowd"] == sum(a["iscrowd"] for a in coco["annotations"])
        assert sum(s["classes"].values()) + s["crowd"] == s["annotations"]
        assert s["captions"] == m["captions"][split] == len(coco["images"])
    images = sorted(p for p in (tiny_ds / "images").rglob("*") if p.is_file())
    assert sorted(m["files"]) == sorted(p.relative_to(tiny_ds).as_posix() for p in images)
    some = images[0]
    assert m["files"][some.relative_to(tiny_ds).as_posix()] == sha256_file(some)
    assert "annotations/instances_train.json" in m["label_files"]
    assert "openimages/train-annotations-bbox.csv" in m["label_files"]
    assert "captions/train.jsonl" in m["label_files"]


def test_content_hash_tracks_images_and_labels(tiny_ds, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(tiny_ds, ds)
    base = write_manifest(ds, {"kind": "synthetic"})["content_hash"]
    assert base == read_manifest(tiny_ds)["content_hash"]  # source/lineage is not content
    (ds / "captions/val.jsonl").write_text((ds / "captions/val.jsonl").read_text() + "\n")
    changed_label = write_manifest(ds, {"kind": "synthetic"})["content_hash"]
    assert changed_label != base
    img = ds / "images/train/000002.jpg"
    img.write_bytes(img.read_bytes()[:-1] + b"\x00")
    assert write_manifest(ds, {"kind": "synthetic"})["content_hash"] != changed_label


def test_read_manifest_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 999}))
    with pytest.raises(DataFormatError, match="schema_version 999"):
        read_manifest(tmp_path)


def test_source_kind_required(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        write_manifest(tmp_path, {})
