"""DR@k, first hits and the random-box baseline on hand-made cases."""
from __future__ import annotations

import numpy as np
import pytest

from components.proposals.recall import (MISS, detection_recall, first_hits, iou_matrix, plot_recall,
                                         random_proposals, recall_curve)


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5, 0.9]][:3], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_detection_recall_on_a_hand_made_split() -> None:
    # image 1: two objects; the proposals (best first) hit object A at rank 0, object B at rank 2
    gt1 = np.array([[0, 0, 10, 10], [50, 50, 70, 70]], float)
    props1 = np.array([[0, 0, 10, 9, 0.9],      # IoU 0.9 with A
                       [30, 30, 40, 40, 0.8],   # nothing
                       [52, 50, 72, 70, 0.7],   # IoU 360/440 = 0.82 with B
                       [0, 0, 10, 10, 0.1]], float)
    # image 2: one object, only a poor proposal (IoU 0.25) -> never found
    gt2 = np.array([[0, 0, 20, 20]], float)
    props2 = np.array([[0, 0, 10, 10, 0.5]], float)
    h1, h2 = first_hits(gt1, props1), first_hits(gt2, props2)
    np.testing.assert_array_equal(h1, [0, 2])
    np.testing.assert_array_equal(h2, [MISS])
    dr = detection_recall([h1, h2], ks=(1, 2, 3, 100))
    assert dr == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 2 / 3, 100: 2 / 3})
    curve = recall_curve([h1, h2], 4)
    np.testing.assert_allclose(curve, [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_an_image_without_proposals_misses_every_box() -> None:
    gt = np.array([[0, 0, 5, 5]], float)
    assert first_hits(gt, np.zeros((0, 5))).tolist() == [MISS]
    assert detection_recall([first_hits(gt, np.zeros((0, 5)))], ks=(1, 10)) == {1: 0.0, 10: 0.0}
    # two proposals, none good: still a miss at k = 10 (more than the image has)
    few = np.array([[50, 50, 60, 60, 1.0], [70, 70, 80, 80, 0.5]])
    assert detection_recall([first_hits(gt, few)], ks=(10,)) == {10: 0.0}


def test_random_proposals_are_quantized_seeded_and_inside() -> None:
    sizes = (10, 20, 40, 80, 160)
    a = random_proposals(100, 60, 500, sizes, np.random.default_rng(3))
    b = random_proposals(100, 60, 500, sizes, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert set(np.round(w).astype(int)) <= {10, 20, 40, 80}    # 160 does not fit in 100 px
    assert set(np.round(h).astype(int)) <= {10, 20, 40}
    assert (a[:, 0] >= 0).all() and (a[:, 2] <= 100 + 1e-3).all() and (a[:, 3] <= 60 + 1e-3).all()


def test_plot_recall_writes_a_png(tmp_path) -> None:
    path = plot_recall({"BING": np.linspace(0.2, 1, 50), "random": np.linspace(0, 0.5, 50)},
                       tmp_path / "recall.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
