from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from components.data.formats import (DataFormatError, box_polygon, mask_to_polygons, mask_to_rle, read_coco,
                                     read_csv, read_jsonl, read_oi_classes, write_csv, write_jsonl)


def _rasterise(polys: list[list[float]], h: int, w: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))


def test_polygons_rasterise_back_to_the_same_pixels():
    rng = np.random.default_rng(0)
    for i in range(60):
        mask = np.zeros((64, 80), np.uint8)
        centre = tuple(int(v) for v in rng.integers(5, 60, 2))
        r = int(rng.integers(1, 25))
        cv2.circle(mask, centre, r, 1, -1)
        if i % 2:  # ring with a hole
            cv2.circle(mask, centre, r // 2, 0, -1)
        if i % 3 == 0:  # an occluder can split it into several parts
            cv2.rectangle(mask, tuple(int(v) for v in rng.integers(0, 64, 2)),
                          tuple(int(v) for v in rng.integers(0, 64, 2)), 0, -1)
        mask[int(rng.integers(0, 64)), int(rng.integers(0, 80))] = 1  # a lone pixel is kept too
        polys = mask_to_polygons(mask)
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polys)
        assert np.array_equal(_rasterise(polys, 64, 80), mask), i


def test_polygons_with_offset_and_empty_mask():
    mask = np.zeros((10, 10), np.uint8)
    assert mask_to_polygons(mask) == []
    mask[2:5, 3:7] = 1
    full = np.zeros((40, 40), np.uint8)
    full[12:15, 23:27] = 1
    assert np.array_equal(_rasterise(mask_to_polygons(mask, offset=(20, 10)), 40, 40), full)


def test_rle_is_compressed_with_str_counts():
    mask = np.zeros((30, 20), np.uint8)
    mask[3:9, 4:15] = 1
    rle = mask_to_rle(mask)
    assert rle["size"] == [30, 20] and isinstance(rle["counts"], str)
    assert np.array_equal(mask_utils.decode(rle), mask)


def test_box_polygon_area():
    assert _rasterise(box_polygon(2, 3, 5, 4), 10, 10).sum() == 20


def test_oi_classes_with_and_without_header(tmp_path):
    (tmp_path / "v6.csv").write_text("/m/01,Cat\n/m/02,Dog\n")
    (tmp_path / "v7.csv").write_text("LabelName,DisplayName\n/m/01,Cat\n/m/02,\"Dog, big\"\n")
    assert read_oi_classes(tmp_path / "v6.csv") == [("/m/01", "Cat"), ("/m/02", "Dog")]
    assert read_oi_classes(tmp_path / "v7.csv") == [("/m/01", "Cat"), ("/m/02", "Dog, big")]
    (tmp_path / "bad.csv").write_text("/m/01\n")
    with pytest.raises(DataFormatError, match=r"bad.csv: row 1"):
        read_oi_classes(tmp_path / "bad.csv")


def test_csv_missing_column_names_file_and_columns(tmp_path):
    write_csv(tmp_path / "a.csv", ["ImageID", "XMin"], [{"ImageID": "x", "XMin": 0.1}])
    assert read_csv(tmp_path / "a.csv", ["ImageID"]) == [{"ImageID": "x", "XMin": "0.1"}]
    with pytest.raises(DataFormatError, match=r"a.csv: missing required column\(s\) \['LabelName'\]"):
        read_csv(tmp_path / "a.csv", ["ImageID", "LabelName"])
    with pytest.raises(DataFormatError, match="not found"):
        read_csv(tmp_path / "nope.csv")


def test_jsonl_round_trip_and_bad_line(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"image": "a.jpg", "caption": "ü"}])
    assert read_jsonl(tmp_path / "c.jsonl") == [{"image": "a.jpg", "caption": "ü"}]
    (tmp_path / "bad.jsonl").write_text('{"image": "a"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_read_coco_errors(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataFormatError, match="broken.json: not valid JSON"):
        read_coco(tmp_path / "broken.json")
    (tmp_path / "nocats.json").write_text('{"images": []}')
    with pytest.raises(DataFormatError, match="'categories'"):
        read_coco(tmp_path / "nocats.json")
    (tmp_path / "ok.json").write_text('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": []}')
    assert read_coco(tmp_path / "ok.json")["annotations"] == []
