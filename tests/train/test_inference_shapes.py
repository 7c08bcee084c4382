"""The trained detector predicts on images of any aspect ratio (the test pipeline pads nothing
itself, so boxes are clipped to the real image and masks are pasted at its size)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def detector(tiny_run):
    """A separate instance: ``inference_detector`` on arrays rewrites the model's test pipeline
    in place (LoadImageFromNDArray), which must not leak into tests that pass file paths."""
    from safetensors.torch import load_file

    from components.train.build import build_detector

    model = build_detector(tiny_run.result.final / "config.py")
    model.load_state_dict(load_file(str(tiny_run.result.final / "model.safetensors")))
    return model


@pytest.mark.parametrize("shape", [(128, 128), (100, 180), (180, 100), (300, 90), (64, 400)])
def test_predict_any_aspect_ratio(detector, shape):
    from mmdet.apis import inference_detector

    h, w = shape
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    pred = inference_detector(detector, image).pred_instances
    assert len(pred) > 0  # an untrained head still scores 100 boxes above 0.05
    boxes = pred.bboxes.numpy()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= w).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= h).all()
    assert tuple(pred.masks.shape[1:]) == (h, w)
