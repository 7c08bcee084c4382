"""Named scene presets of the built-in dataset: ``data.synthetic.preset`` in params.yaml.

Why presets: one scene set cannot serve both purposes the project has.

* ``easy`` (the CPU default): few, large, well-separated objects of four clearly different
  shapes on lightly cluttered backgrounds at 128 px, and many training images. A detector
  trained from scratch for a few minutes on 2 CPU cores learns it visibly, so the default run's
  numbers (and the paper tables run on it) are above noise.
* ``hard`` (the project's original scenes): eight shapes, 2-12 objects from small to large,
  heavy occlusion and clutter at 256 px. It needs a GPU-sized schedule or a strong
  initialisation; use it to stress a model, not to see one learn in minutes.

Every key of ``data.synthetic`` other than ``preset`` overrides the preset's value; ``null``
(or leaving the key out) keeps it. Adding a preset is adding a dict here.
"""
from __future__ import annotations

from typing import Any

from components.data.synthetic.shapes import SHAPES

__all__ = ["PRESETS", "DEFAULT_PRESET"]

PRESETS: dict[str, dict[str, Any]] = {
    "easy": {
        "image_size": 128,
        "classes": ["circle", "triangle", "square", "star"],
        "num_images": {"train": 2000, "val": 100, "test": 100, "unlabeled": 300},
        "objects_per_image": [1, 4],
        "scale_range": [0.2, 0.5],
        "occlusion": 0.15,
        "clutter": 0.2,
        "crowd_fraction": 0.05,
        "jpeg_quality": 92,
    },
    "hard": {
        "image_size": 256,
        "classes": list(SHAPES),
        "num_images": {"train": 240, "val": 60, "test": 60, "unlabeled": 300},
        "objects_per_image": [2, 12],
        "scale_range": [0.06, 0.45],
        "occlusion": 0.35,
        "clutter": 0.6,
        "crowd_fraction": 0.05,
        "jpeg_quality": 92,
    },
}
# A config dict without ``preset`` (tests, partial dicts) completes from this one; params.yaml
# names its preset explicitly.
DEFAULT_PRESET = "hard"
