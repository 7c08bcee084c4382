"""Crop policies of object-aware cropping (arXiv 2112.00319): regions, box handling, coverage."""
from __future__ import annotations

import random

import numpy as np
import pytest

from components.pretrain.crops import (POLICIES, CropParams, CropSampler, dilate, needs_boxes,
                                       random_resized_region, shift)

SIZE = (200, 100)


def _inside(region, outer, tol=1e-6) -> bool:
    return (region[0] >= outer[0] - tol and region[1] >= outer[1] - tol
            and region[2] <= outer[2] + tol and region[3] <= outer[3] + tol)


def test_random_resized_region_respects_scale_ratio_and_bounds():
    rng = random.Random(0)
    outer = (10.0, 20.0, 110.0, 70.0)  # 100 x 50
    for _ in range(200):
        r = random_resized_region(outer, (0.2, 0.6), (3 / 4, 4 / 3), rng)
        w, h = r[2] - r[0], r[3] - r[1]
        assert _inside(r, outer)
        frac = w * h / (100 * 50)
        # either a proper draw, or the centred fallback (largest rectangle of an allowed ratio)
        assert 0.2 - 1e-6 <= frac <= 0.6 + 1e-6 or frac > 0.6
        assert 3 / 4 - 1e-6 <= w / h <= 4 / 3 + 1e-6


def test_dilate_grows_and_clips_and_shift_keeps_the_size_inside_the_image():
    assert dilate((50, 40, 70, 60), 0.5, SIZE) == (40.0, 30.0, 80.0, 70.0)
    assert dilate((0, 0, 20, 20), 1.0, SIZE)[:2] == (0.0, 0.0)  # clipped at the border
    rng = random.Random(1)
    for _ in range(100):
        s = shift((150, 10, 190, 50), 0.5, SIZE, rng)
        assert _inside(s, (0, 0, *SIZE))
        assert s[2] - s[0] == pytest.approx(40) and s[3] - s[1] == pytest.approx(40)


def test_every_registered_policy_is_listed_and_knows_whether_it_needs_boxes():
    assert set(POLICIES) >= {"scene_scene", "obj_scene", "obj_obj_dilate", "obj_obj_shift"}
    assert not needs_boxes("scene_scene")
    assert all(needs_boxes(p) for p in ("obj_scene", "obj_obj_dilate", "obj_obj_shift"))


def test_object_policies_crop_inside_the_sampled_box():
    box = np.array([[60.0, 20.0, 120.0, 80.0]])
    for policy in ("obj_scene", "obj_obj_dilate", "obj_obj_shift"):
        sampler = CropSampler(CropParams(policy=policy, dilation=0.5, shift=0.3), seed=0)
        for _ in range(50):
            r1, r2 = sampler(SIZE, box)
            assert _inside(r1, box[0]), policy
            if policy == "obj_obj_dilate":
                assert _inside(r2, dilate(box[0], 0.5, SIZE))
        assert sampler.fallbacks == 0


def test_small_or_missing_boxes_fall_back_to_scene_crops_and_are_counted():
    sampler = CropSampler(CropParams(policy="obj_obj_dilate", min_box=0.2), seed=0)
    tiny = np.array([[5.0, 5.0, 15.0, 15.0]])  # 10 px < 0.2 x 100 px
    sampler(SIZE, tiny)
    sampler(SIZE, None)
    assert sampler.fallbacks == 2
    assert len(sampler.candidates(np.array([[0, 0, 100, 50], [0, 0, 10, 10]]), SIZE)) == 1


def test_num_proposals_limits_sampling_to_the_top_boxes():
    boxes = np.array([[0, 0, 50, 50], [100, 0, 150, 50], [150, 50, 200, 100]], dtype=np.float32)
    sampler = CropSampler(CropParams(policy="obj_scene", num_proposals=1), seed=0)
    for _ in range(30):
        r1, _ = sampler(SIZE, boxes)
        assert _inside(r1, boxes[0])


def test_bad_options_name_the_key():
    with pytest.raises(KeyError, match="diltion"):
        CropParams.from_options({"diltion": 1})
    with pytest.raises(KeyError, match="crop policy"):
        CropParams.from_options({"policy": "obj_everything"})
    with pytest.raises(ValueError, match="boxes"):
        CropParams.from_options({"boxes": "edgeboxes"})


def test_object_crops_hold_more_object_than_scene_crops(pretrain_ds):
    """The paper's premise on our multi-object scenes: crops from GT boxes contain objects."""
    from components.pretrain.twoview import gt_boxes, split_images

    paths, coco = split_images(pretrain_ds, "train")
    boxes = gt_boxes(coco)
    size = (coco["images"][0]["width"], coco["images"][0]["height"])

    def coverage(policy: str) -> float:
        sampler = CropSampler(CropParams(policy=policy, boxes="gt", min_box=0.0), seed=0)
        fracs = []
        for b in boxes:
            mask = np.zeros(size[::-1], dtype=bool)
            for x1, y1, x2, y2 in b.astype(int):
                mask[y1:y2, x1:x2] = True
            for _ in range(20):
                r, _ = sampler(size, b)
                x1, y1, x2, y2 = (int(round(v)) for v in r)
                fracs.append(mask[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)].mean())
        return float(np.mean(fracs))

    assert coverage("obj_scene") > coverage("scene_scene") + 0.1
