"""Normed gradients: exact values on hand-made images, and window features = map windows."""
from __future__ import annotations

import cv2
import numpy as np

from components.proposals.features import WIN, as_rgb, ng_map, resized_shape, window_features


def test_ng_of_a_vertical_step_edge() -> None:
    img = np.zeros((6, 10, 3), np.uint8)
    img[:, 5:, 1] = 200                          # green step between columns 4 and 5
    ng = ng_map(img)
    assert ng.shape == (6, 10) and ng.dtype == np.uint8
    expected = np.zeros((6, 10), np.uint8)
    expected[:, 4:6] = 200                       # |I(x+1) - I(x-1)| on both sides of the step
    np.testing.assert_array_equal(ng, expected)


def test_ng_takes_the_channel_max_per_direction() -> None:
    img = np.zeros((5, 5, 3), np.uint8)
    img[2, 2] = (0, 150, 0)        # green dot
    img[2, 3] = (0, 0, 250)        # blue dot to its right
    img[3, 1] = (100, 0, 0)        # red dot
    ng = ng_map(img).astype(int)
    assert ng[2, 2] == 250         # gx = |I(2,3) - I(2,1)| = 250 (blue), gy = 0
    assert ng[1, 2] == 150         # gy = |I(2,2) - I(0,2)| = 150 (green)
    # gx from green (150), gy from red (100): max per direction, then the sum (not the
    # largest per-channel sum, which would be 150)
    assert ng[2, 1] == 250
    assert ng[0, 0] == 0


def test_ng_saturates_at_255() -> None:
    img = np.zeros((5, 5), np.uint8)
    img[2, 3] = 200                               # right neighbour of (2, 2)
    img[3, 2] = 200                               # lower neighbour of (2, 2)
    assert ng_map(as_rgb(img))[2, 2] == 255       # 200 + 200 clipped


def test_resized_shape_maps_a_window_to_8x8() -> None:
    assert resized_shape(500, 375, 10, 20) == (400, 150)
    assert resized_shape(128, 128, 160, 40) == (6, 26)     # 160 px wide does not fit: < 8


def test_window_features_match_the_whole_image_map() -> None:
    """An 8x8 box on the original grid is the identity warp: its feature is the NG map under it
    (interior boxes; the 1-pixel margin sees the same neighbours)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), (5, 5), 0)
    ng = ng_map(img)
    boxes = np.array([[8, 8, 16, 16], [20, 12, 28, 20], [3, 30, 11, 38]], float)
    feats = window_features(img, boxes)
    assert feats.shape == (3, WIN * WIN) and feats.dtype == np.float32
    for f, (x1, y1, x2, y2) in zip(feats, boxes.astype(int)):
        np.testing.assert_array_equal(f.reshape(WIN, WIN), ng[y1:y2, x1:x2])
