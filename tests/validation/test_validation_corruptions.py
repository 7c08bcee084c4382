"""Bad-input corpus: each case takes a valid tiny dataset, applies ONE corruption, runs the gate
and checks that it fails, names the offending file/record and rule, and writes no marker."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest
from validation_helpers import VALIDATION_CFG, edit_json, edit_lines, load_json, png_bomb

from components.validation import validate_dataset

TRAIN_JSON = "annotations/instances_train.json"


def _coco(root: Path) -> Path:
    return root / TRAIN_JSON


def _first_image(root: Path) -> dict:
    return load_json(_coco(root))["images"][0]


def _set_image(root: Path, **values) -> str:
    edit_json(_coco(root), lambda d: d["images"][0].update(values))
    return f"{TRAIN_JSON}:image id={_first_image(root)['id']}"


def _set_ann(root: Path, pick: Callable[[dict], bool] = lambda a: True, **values) -> str:
    data = load_json(_coco(root))
    ann = next(a for a in data["annotations"] if pick(a))
    ann.update(values)
    _coco(root).write_text(json.dumps(data))
    return f"{TRAIN_JSON}:annotation id={ann['id']}"


def _polygon(a: dict) -> bool:
    return a["iscrowd"] == 0 and isinstance(a["segmentation"], list)


def _image_file(root: Path) -> Path:
    return root / "images" / _first_image(root)["file_name"]


# ---------------------------------------------------------------------------- corruptions
# Each returns substrings the failure report must contain. ``@case(suite)`` registers it and
# names the suite that must catch it (only that suite runs: GX costs ~40 ms per expectation).
CASES: list[Callable] = []


def case(suite: str) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        fn.suite = suite
        CASES.append(fn)
        return fn
    return register


@case("coco")
def truncated_jpeg(root):
    path = _image_file(root)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [f"{TRAIN_JSON}:image id=", "must decode fully", "truncated"]


@case("coco")
def zero_byte_image(root):
    _image_file(root).write_bytes(b"")
    return [f"{TRAIN_JSON}:image id=", "zero-byte", _first_image(root)["file_name"]]


@case("coco")
def missing_image(root):
    _image_file(root).unlink()
    return [f"{TRAIN_JSON}:image id=", "image file must exist",
            f"images/{_first_image(root)['file_name']}"]


@case("coco")
def escape_dotdot(root):
    return [_set_image(root, file_name="../manifest.json"), "'..'", "inside images/"]


@case("coco")
def absolute_path(root):
    return [_set_image(root, file_name=str(_image_file(root).resolve())), "absolute image path"]


@case("coco")
def symlink_outside(root):
    path = _image_file(root)
    outside = root.parent / "outside.jpg"          # a perfectly good image, outside the dataset
    outside.write_bytes(path.read_bytes())
    path.unlink()
    os.symlink(outside, path)
    return [f"{TRAIN_JSON}:image id=", "resolves outside images/"]


@case("coco")
def bbox_out_of_bounds(root):
    return [_set_ann(root, bbox=[40.0, 40.0, 30.0, 30.0]), "bbox must lie inside its image",
            "64x64"]


@case("coco")
def negative_bbox(root):
    return [_set_ann(root, bbox=[5.0, 5.0, -4.0, 10.0]), "bbox width must be > 0"]


@case("coco")
def nan_bbox(root):
    return [_set_ann(root, bbox=[float("nan"), 5.0, 4.0, 10.0]), "bbox values must be finite",
            "NaN"]


@case("coco")
def unknown_category(root):
    return [_set_ann(root, category_id=999), "category_id must be a category"]


@case("coco")
def duplicate_image_id(root):
    def dup(d):
        d["images"][1]["id"] = d["images"][0]["id"]
    edit_json(_coco(root), dup)
    return [f"{TRAIN_JSON}:image id={_first_image(root)['id']}", "image id must be unique"]


@case("coco")
def duplicate_annotation_id(root):
    data = load_json(_coco(root))
    data["annotations"][1]["id"] = data["annotations"][0]["id"]
    _coco(root).write_text(json.dumps(data))
    return [f"{TRAIN_JSON}:annotation id={data['annotations'][0]['id']}",
            "annotation id must be unique"]


@case("coco")
def annotation_missing_image(root):
    return [_set_ann(root, image_id=424242), "image_id must be an image of this file"]


@case("coco")
def polygon_two_points(root):
    return [_set_ann(root, _polygon, segmentation=[[1.0, 1.0, 5.0, 5.0]]),
            "at least 3 points", "4 numbers"]


@case("coco")
def polygon_outside(root):
    return [_set_ann(root, _polygon, segmentation=[[1.0, 1.0, 90.0, 1.0, 5.0, 5.0]]),
            "polygon points must lie inside the image"]


@case("coco")
def rle_wrong_size(root):
    return [_set_ann(root, lambda a: a["iscrowd"] == 1, segmentation={"size": [32, 64],
                                                                      "counts": [0, 2048]}),
            "RLE size must equal the image's [height, width]", "[64, 64]"]


@case("coco")
def invalid_json(root):
    _coco(root).write_text('{"images": [{"id": 1,}\n')
    return [f"{TRAIN_JSON}:line 1", "invalid JSON"]


@case("coco")
def missing_key(root):
    ann = load_json(_coco(root))["annotations"][0]
    def drop(d):
        del d["annotations"][0]["bbox"]
    edit_json(_coco(root), drop)
    return [f"{TRAIN_JSON}:annotation id={ann['id']}", "COCO schema", "key 'bbox' missing"]


@case("coco")
def string_for_number(root):
    return [_set_ann(root, area="12"), "key 'area' must be a number, got string"]


@case("coco")
def string_image_width(root):
    return [_set_image(root, width="64"), "key 'width' must be an integer, got string"]


@case("coco")
def top_level_not_coco(root):
    edit_json(_coco(root), lambda d: {"images": d["images"]})
    return [f"{TRAIN_JSON}:top level", "COCO key 'annotations' missing"]


@case("coco")
def record_size_mismatch(root):
    return [_set_image(root, width=65), "width/height must match the file", "65x64"]


@case("coco")
def bad_iscrowd(root):
    return [_set_ann(root, _polygon, iscrowd=2), "iscrowd must be 0 or 1"]


@case("coco")
def zero_area(root):
    return [_set_ann(root, area=0), "area must be > 0"]


@case("coco")
def decompression_bomb(root):
    _image_file(root).write_bytes(png_bomb(100_000, 100_000))
    return [f"{TRAIN_JSON}:image id=", "100000x100000", "validation.max_pixels"]


@case("imagetext")
def caption_not_utf8(root):
    path = root / "captions" / "train.jsonl"
    latin1 = b'{"image": "train/000001.jpg", "caption": "caf\xe9 au lait"}'
    edit_lines(path, lambda lines: lines + [latin1])
    n = len(path.read_bytes().rstrip(b"\n").split(b"\n"))
    return [f"captions/train.jsonl:line {n}", "not valid UTF-8"]


@case("imagetext")
def caption_bad_json(root):
    path = root / "captions" / "train.jsonl"
    cut = b'{"image": "train/000001.jpg", "caption": '
    edit_lines(path, lambda lines: [lines[0], cut] + lines[1:])
    return ["captions/train.jsonl:line 2", "invalid JSON"]


@case("imagetext")
def duplicate_caption(root):
    path = root / "captions" / "train.jsonl"
    edit_lines(path, lambda lines: lines + [lines[0]])
    return ["captions/train.jsonl:line 1", "duplicate (image, caption) pair"]


@case("imagetext")
def empty_caption(root):
    path = root / "captions" / "train.jsonl"
    edit_lines(path, lambda lines: [json.dumps({**json.loads(lines[0]), "caption": ""}).encode()]
               + lines[1:])
    return ["captions/train.jsonl:line 1", "caption must not be empty",
            "validation.caption_length"]


@case("imagetext")
def caption_missing_image(root):
    path = root / "captions" / "train.jsonl"
    edit_lines(path, lambda lines: lines + [b'{"image": "train/nope.jpg", "caption": "a cat"}'])
    return ["captions/train.jsonl:line 4", "image file must exist", "images/train/nope.jpg"]


def _edit_csv(root: Path, name: str, row: int, **values) -> str:
    path = root / "openimages" / name
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    for key, value in values.items():
        cells[header.index(key)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return f"openimages/{name}:line {row + 1}"


@case("openimages")
def oi_coord_out_of_range(root):
    return [_edit_csv(root, "train-annotations-bbox.csv", 1, XMax="1.5"), "XMax must be in [0, 1]"]


@case("openimages")
def oi_min_ge_max(root):
    return [_edit_csv(root, "train-annotations-bbox.csv", 2, XMin="0.9", XMax="0.1"),
            "XMin must be < XMax"]


@case("openimages")
def oi_unknown_label(root):
    return [_edit_csv(root, "train-annotations-bbox.csv", 1, LabelName="/m/nope"),
            "LabelName must be listed in class-descriptions.csv"]


@case("openimages")
def oi_not_a_number(root):
    return [_edit_csv(root, "val-annotations-bbox.csv", 1, YMin="abc"),
            'YMin "abc" is not a number']


@case("openimages")
def oi_missing_column(root):
    path = root / "openimages" / "test-annotations-bbox.csv"
    path.write_text(path.read_text().replace("XMin", "XMinimum", 1))
    return ["openimages/test-annotations-bbox.csv:line 1", "column(s) XMin missing"]


@case("openimages")
def oi_missing_image(root):
    return [_edit_csv(root, "train-annotations-human-imagelabels.csv", 1, ImageID="ffff"),
            "image file must exist", "images/train/ffff.jpg"]


@case("openimages")
def oi_image_id_escapes(root):
    return [_edit_csv(root, "train-annotations-bbox.csv", 1, ImageID="../../manifest"), "'..'"]




@pytest.mark.parametrize("corrupt", CASES, ids=[c.__name__ for c in CASES])
def test_corruption_is_rejected(dataset: Path, tmp_path: Path, corrupt) -> None:
    expected = corrupt(dataset)
    out = tmp_path / "out"
    out.mkdir()
    (out / "validated.json").write_text("{}")          # a stale marker must not survive
    result = validate_dataset(dataset, VALIDATION_CFG, out, progress=False,
                              suites=[corrupt.suite])
    text = "\n".join(str(f) for f in result.failures)
    assert not result.success
    assert list(result.summary["suites"]) == [corrupt.suite]
    for part in expected:
        assert part in text, f"{part!r} not in failures:\n{text}"
    assert not (out / "validated.json").exists()
    assert "FAIL" in (out / "report.html").read_text()


def test_pixel_limit_from_params(dataset: Path, tmp_path: Path) -> None:
    result = validate_dataset(dataset, {**VALIDATION_CFG, "max_pixels": 64 * 64 - 1},
                              tmp_path / "out", progress=False, suites=["coco"])
    text = "\n".join(str(f) for f in result.failures)
    assert not result.success
    assert "declares 64x64 = 4096 pixels > validation.max_pixels 4095" in text


def test_truncation_passes_without_decode_but_not_with(dataset: Path, tmp_path: Path) -> None:
    """decode_images=false checks headers only, so it cannot see a cut-off JPEG body."""
    truncated_jpeg(dataset)
    fast = validate_dataset(dataset, {**VALIDATION_CFG, "decode_images": False},
                            tmp_path / "fast", progress=False, suites=["coco"])
    full = validate_dataset(dataset, VALIDATION_CFG, tmp_path / "full", progress=False,
                            suites=["coco"])
    assert fast.success and not full.success
