"""BING itself: NMS, the two training stages on real (synthetic) images, save/load + version."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from components.proposals.bing import (DROPPED_BIAS, FILL_BIAS, BingModel, ModelFileError,
                                       fill_maxima, load_model, local_maxima, save_model,
                                       size_pairs, train_bing)
from components.proposals.recall import iou_matrix


def test_nms_keeps_the_local_maxima() -> None:
    score = np.zeros((10, 12), np.float32)
    score[2, 2], score[2, 3], score[3, 2] = 5.0, 4.5, 4.0     # a peak and its shoulders
    score[2, 8] = 4.0                                          # a second peak, 6 columns away
    score[7, 7], score[7, 9] = 3.0, 2.0                        # 2.0 is within radius 2 of 3.0
    score[:, 11] = -np.inf                                     # not windows
    score[0:2, :] += np.linspace(-2, -1, 12, dtype=np.float32)  # background slope, no maxima there
    idx, vals = local_maxima(score, radius=2, keep=3)
    got = {divmod(int(i), 12) for i in idx}
    assert got == {(2, 2), (2, 8), (7, 7)}
    assert sorted(vals.tolist(), reverse=True) == [5.0, 4.0, 3.0]
    idx, vals = local_maxima(score, radius=2, keep=1)
    assert [divmod(int(i), 12) for i in idx] == [(2, 2)]
    idx, _ = local_maxima(score, radius=0, keep=10 ** 6)       # no suppression: every window
    assert len(idx) == 10 * 11
    # fill tier: 2.0 at (7, 9) is a 3x3 maximum that the 5x5 NMS removed; no 5x5 maximum is in it
    idx, vals = fill_maxima(score, radius=2, fill_radius=1, keep=100)
    fill = {divmod(int(i), 12) for i in idx}
    assert (7, 9) in fill and not fill & {(2, 2), (2, 8), (7, 7)}
    assert vals.max() < 5.0


def test_fill_tier_ranks_after_every_nms_maximum(trained, bing_ds: Path) -> None:
    """With a budget larger than the NMS maxima, the extra windows come after all of them."""
    params, _ = trained
    from components.proposals.data import read_image, read_split
    from components.proposals.stage import model_path

    model = load_model(model_path(params))
    assert model.fill_radius == 1
    img, _ = read_image(read_split(bing_ds, "val")[0].path)
    plain = BingModel(model.sizes, model.w, model.calib, model.active, model.nms_radius,
                      model.per_size, fill_radius=0)
    base, more = plain.propose(img, 10 ** 5), model.propose(img, 10 ** 5)
    assert len(more) > len(base)
    np.testing.assert_array_equal(more[:len(base)], base)      # same head, same order
    assert (more[len(base):, 4] < base[-1, 4] + FILL_BIAS / 2).all()
    np.testing.assert_array_equal(model.propose(img, 20), plain.propose(img, 20))


def _squares(n: int, seed: int, side: int = 32, img: int = 128) -> tuple[list, list]:
    """Images of 1-2 solid ``side`` x ``side`` squares on a smooth noisy background."""
    rng = np.random.default_rng(seed)
    images, boxes = [], []
    for _ in range(n):
        bg = cv2.GaussianBlur(rng.integers(60, 120, (img, img, 3), dtype=np.uint8), (9, 9), 3)
        bxs = []
        for _ in range(rng.integers(1, 3)):
            x, y = rng.integers(0, img - side, 2)
            if bxs and iou_matrix([[x, y, x + side, y + side]], bxs).max() > 0:
                continue
            bg[y:y + side, x:x + side] = rng.integers(150, 255, 3)
            bxs.append([x, y, x + side, y + side])
        images.append(bg)
        boxes.append(np.array(bxs, float))
    return images, boxes


def test_calibration_ranks_the_size_objects_have_first() -> None:
    """Every object is 32x32: stage II keeps 32x32, drops sizes that never hold an object, and
    the top proposals are 32x32 windows on the squares."""
    images, boxes = _squares(20, seed=0)
    model = train_bing(images, boxes, sizes=(8, 16, 32, 64), negatives_per_image=30, per_size=60)
    pairs = size_pairs(model.sizes)
    assert model.active[pairs.index((32, 32))]
    for thin in ((8, 64), (64, 8), (8, 8)):
        k = pairs.index(thin)
        assert not model.active[k] and model.calib[k, 1] == DROPPED_BIAS
    weights = model.calib[model.active, 0]
    assert model.calib[pairs.index((32, 32)), 0] == weights.max()    # the largest weight v
    test_images, test_boxes = _squares(10, seed=1)
    top1_hits = top1_square = 0
    for img, gt in zip(test_images, test_boxes):
        best = model.propose(img, top_k=1)
        top1_hits += iou_matrix(best, gt).max() >= 0.5
        top1_square += bool((np.round(best[0, 2:4] - best[0, :2]) == 32).all())
    assert top1_hits >= 8 and top1_square >= 8


def test_trained_model_beats_random_boxes(trained) -> None:
    """The real train stage on the tiny synthetic scenes: BING finds far more objects than
    as many random quantized boxes."""
    _, meta = trained
    dr = meta["evaluation"]["dr"]
    assert dr["bing"]["10"] > dr["random"]["10"] + 0.2
    assert dr["bing"]["100"] > dr["random"]["100"] + 0.2
    assert dr["bing"]["100"] >= 0.6
    assert 0 < meta["num_kept_sizes"] < meta["num_sizes"] == 36


def test_propose_output_contract(trained, bing_ds: Path) -> None:
    params, _ = trained
    from components.proposals.data import read_image, read_split
    from components.proposals.stage import model_path

    model = load_model(model_path(params))
    img, _ = read_image(read_split(bing_ds, "val")[0].path)
    props = model.propose(img, top_k=50)
    assert props.shape == (50, 5) and props.dtype == np.float32
    assert (np.diff(props[:, 4]) <= 0).all()                       # best first
    assert (props[:, 0] >= 0).all() and (props[:, 2] <= img.shape[1]).all()
    assert (props[:, 1] >= 0).all() and (props[:, 3] <= img.shape[0]).all()
    assert (props[:, 2] > props[:, 0]).all() and (props[:, 3] > props[:, 1]).all()
    np.testing.assert_array_equal(model.propose(img, top_k=10), props[:10])
    grey = model.propose(img[:, :, 0], top_k=5)                    # (H, W) grey works too
    assert grey.shape == (5, 5)
    assert model.propose(np.zeros((4, 4, 3), np.uint8)).shape == (0, 5)  # smaller than any size


def test_save_load_round_trip_and_version(trained, tmp_path: Path) -> None:
    params, meta = trained
    from components.proposals.stage import model_path

    model = load_model(model_path(params))
    assert model.version == meta["version"]
    path = save_model(model, tmp_path / "model.json")
    data = json.loads(path.read_text())                  # plain JSON: nothing to unpickle
    assert data["version"] == model.version and data["format"] == "bing/1"
    again = load_model(path)
    assert again.version == model.version and again.to_dict() == model.to_dict()
    img = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    np.testing.assert_array_equal(again.propose(img, 30), model.propose(img, 30))

    w = model.w.copy()
    w[0, 0] = np.nextafter(w[0, 0], np.float32(np.inf))  # one ulp
    versions = {model.version,
                BingModel(model.sizes, w, model.calib, model.active, model.nms_radius,
                          model.per_size).version,
                BingModel(model.sizes, model.w, model.calib, model.active, 1, model.per_size).version,
                BingModel(model.sizes, model.w, model.calib, model.active, model.nms_radius,
                          model.per_size + 1).version}
    assert len(versions) == 4

    data["w"][0][0] += 1.0                   # edited parameters, stale version
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(path)
    path.write_text("not json")
    with pytest.raises(ModelFileError, match="not JSON"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="components.proposals train"):
        load_model(tmp_path / "missing.json")


def test_a_size_whose_every_window_is_an_object_stays_active() -> None:
    """32x32 images, each one object filling it: the single 32x32 window is always positive
    (stage II has no negative for that size); it must stay, with positive log-odds."""
    rng = np.random.default_rng(0)
    images = []
    for _ in range(6):
        img = np.full((32, 32, 3), 40, np.uint8)
        img[1:31, 1:31] = rng.integers(150, 255, 3)
        images.append(img)
    boxes = [np.array([[0.0, 0.0, 32.0, 32.0]])] * len(images)
    model = train_bing(images, boxes, sizes=(16, 32), negatives_per_image=20, min_positives=1)
    assert model.active[size_pairs(model.sizes).index((32, 32))]
    props = model.propose(images[0], top_k=100)
    whole = props[(props[:, :4] == [0, 0, 32, 32]).all(1)]
    assert len(whole) == 1 and whole[0, 4] > 0
