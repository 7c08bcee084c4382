"""BING stage parameters: ``params.yaml`` ``proposals:`` over :data:`PROPOSAL_DEFAULTS`.

Why defaults in code: the stage runs before (and without) a ``proposals:`` block in
params.yaml. A key in the block that is not below is an error (a typo would otherwise be
ignored silently). Relative paths are relative to the project root, as DVC runs stages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from components.common.env import PROJECT_ROOT

__all__ = ["PROPOSAL_DEFAULTS", "TRAIN_KEYS", "with_defaults", "check", "resolve_path", "model_kwargs"]

PROPOSAL_DEFAULTS: dict[str, Any] = {
    "out": "pretrained/bing",          # model.json, meta.json, metrics.json, recall.png
    "cache_dir": "data/proposals",     # <split>.npz written by `propose`
    # --- training (`train`)
    "train_split": "train",
    "max_train_images": 500,           # first N images of the split (0 = all): ~seconds on 1 core
    "sizes": [10, 20, 40, 80, 160, 320],  # window sides (the paper's); every (W, H) pair: 36 sizes
    "svm_C": 1.0,                      # stage I: L2-SVM on 64-D NG features
    "calib_C": 10.0,                   # stage II: per-size logistic calibration
    "negatives_per_image": 50,         # random windows with IoU < 0.5 to every box
    "nms_radius": 2,                   # stage-I NMS: local maxima of 5x5 windows
    "per_size": 130,                   # windows kept per size after NMS
    "fill_radius": 1,                  # + up to per_size 3x3-only maxima per size, ranked after
                                       #   all 5x5 maxima (0 = off: the paper's NMS alone)
    "min_positives": 5,                # stage-II positives a size needs, else it is dropped
    # --- evaluation (`train` writes it to meta.json)
    "eval_split": "val",
    "max_eval_images": 0,              # 0 = all
    "eval_k": [10, 100, 1000],         # DR@k
    "threads": 1,                      # OpenCV threads (speed figures are per core)
    # --- cache (`propose`)
    "splits": ["train"],
    "top_k": 100,                      # proposals cached per image
}

# The keys the trained model depends on (the rest only change evaluation or the cache).
TRAIN_KEYS = ("train_split", "max_train_images", "sizes", "svm_C", "calib_C",
              "negatives_per_image", "nms_radius", "per_size", "fill_radius", "min_positives")


def with_defaults(params: Mapping[str, Any]) -> dict:
    """A copy of ``params`` whose ``proposals`` section is completed from the defaults."""
    from components.common.params import with_section_defaults

    return with_section_defaults(params, "proposals", PROPOSAL_DEFAULTS,
                                 where="components/proposals/config.py")


def check(cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first invalid ``proposals.*`` value."""
    sizes = cfg["sizes"]
    rules = [
        (isinstance(sizes, list) and sizes and all(isinstance(s, int) and s >= 2 for s in sizes)
         and len(set(sizes)) == len(sizes), "sizes must be distinct integers >= 2"),
        (all(isinstance(k, int) and k >= 1 for k in cfg["eval_k"]) and cfg["eval_k"],
         "eval_k must be positive integers"),
        (int(cfg["top_k"]) >= 1, "top_k must be >= 1"),
        (int(cfg["per_size"]) >= 1, "per_size must be >= 1"),
        (int(cfg["nms_radius"]) >= 0, "nms_radius must be >= 0"),
        (int(cfg["fill_radius"]) >= 0, "fill_radius must be >= 0 (0 = off)"),
        (float(cfg["svm_C"]) > 0 and float(cfg["calib_C"]) > 0, "svm_C and calib_C must be > 0"),
        (int(cfg["threads"]) >= 0, "threads must be >= 0 (0 = OpenCV default)"),
        (isinstance(cfg["splits"], list) and cfg["splits"], "splits must be a non-empty list"),
    ]
    for ok, rule in rules:
        if not ok:
            raise ValueError(f"proposals: {rule}")


def resolve_path(path: str | Path, root: Path = PROJECT_ROOT) -> Path:
    path = Path(path)
    return path if path.is_absolute() else root / path


def model_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``train_bing`` keyword arguments of a ``proposals`` section."""
    return {"sizes": [int(s) for s in cfg["sizes"]], "C": float(cfg["svm_C"]),
            "calib_C": float(cfg["calib_C"]), "negatives_per_image": int(cfg["negatives_per_image"]),
            "nms_radius": int(cfg["nms_radius"]), "per_size": int(cfg["per_size"]),
            "fill_radius": int(cfg["fill_radius"]),
            "min_positives": int(cfg["min_positives"])}
