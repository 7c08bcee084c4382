"""DetectorPyFunc round trip: logged from code (no pickle), rebuilt from config + safetensors."""
from __future__ import annotations

import base64

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from pycocotools import mask as mask_utils

from components.tracking.pyfunc_model import InvalidImage, log_detector_model, pinned_requirements
from components.tracking.runs import ensure_experiment

TINY = "tiny_detector:build"


def _png(path: Path, img_rgb: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), img_rgb[:, :, ::-1])
    return path


def test_round_trip_inputs_outputs_and_no_pickle(tmp_path, tiny_model_files):
    import tiny_detector
    import torch

    with mlflow.start_run(experiment_id=ensure_experiment("tracking-tests-pyfunc")):
        info = log_detector_model(*tiny_model_files, name="model", builder=TINY,
                                  model_config={"score_threshold": 0.0})
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not any(f.endswith((".pkl", ".pickle")) for f in files)  # models from code
    assert "pyfunc_entry.py" in files
    assert "code/components/tracking/pyfunc_model.py" in files  # self-contained code
    assert not any("__pycache__" in f for f in files)
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["model_code_path"].endswith("pyfunc_entry.py")
    reqs = (local / "requirements.txt").read_text().split()
    assert f"safetensors=={importlib.metadata.version('safetensors')}" in reqs
    assert set(pinned_requirements()) <= set(reqs)

    model = mlflow.pyfunc.load_model(info.model_uri)
    rgb = np.zeros((10, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    expected_model = tiny_detector.build("")
    from safetensors.torch import load_file

    expected_model.load_state_dict(load_file(str(tiny_model_files[1])))
    with torch.no_grad():
        want = expected_model.predict_images([rgb[:, :, ::-1].copy()])[0]  # the model sees BGR

    # the signature: one binary 'image' column (what a served request carries)
    assert model.metadata.get_input_schema().input_names() == ["image"]
    local_model = model.unwrap_python_model()  # in-process API: arrays and local paths too
    by_array = local_model.predict(None, [rgb])
    assert len(by_array) == 1
    out = by_array[0]
    assert out["boxes"] == [[0.0, 0.0, 4.0, 5.0]] and out["labels"] == [2]
    assert out["scores"] == pytest.approx([float(want["scores"][0])], abs=1e-6)
    assert "label_names" not in out  # the tiny model's config names no classes for us
    assert len(out["masks"]) == 1 and isinstance(out["masks"][0]["counts"], str)
    decoded = mask_utils.decode({"size": out["masks"][0]["size"],
                                 "counts": out["masks"][0]["counts"].encode()})
    assert decoded.shape == (10, 8) and decoded[:5, :4].all() and decoded.sum() == 20

    path = _png(tmp_path / "img.png", rgb)
    by_path = local_model.predict(None, [str(path)])
    by_df_bytes = model.predict(pd.DataFrame({"image": [path.read_bytes()]}))
    by_df_b64 = local_model.predict(None, pd.DataFrame(
        {"image": [base64.b64encode(path.read_bytes()).decode()]}))
    by_batch = local_model.predict(None, np.stack([rgb, rgb]))
    assert by_path == by_df_bytes == by_df_b64 == by_array  # PNG is lossless: same pixels
    assert by_batch == by_array * 2

    blue = rgb[:, :, ::-1].copy()
    assert local_model.predict(None, [blue])[0]["scores"] != out["scores"]  # channel order

    strict = mlflow.pyfunc.load_model(info.model_uri, model_config={"score_threshold": 1.01})
    assert strict.unwrap_python_model().predict(None, [rgb]) == [
        {"boxes": [], "labels": [], "scores": [], "masks": []}]

    with pytest.raises(FileNotFoundError, match="image file not found"):
        local_model.predict(None, [str(tmp_path / "missing.png")])
    # a string in the DataFrame column is base64, never a path: nothing on disk is opened
    with pytest.raises(InvalidImage, match="row 0: image: a string must be base64"):
        local_model.predict(None, pd.DataFrame({"image": [str(path)]}))
    with pytest.raises(InvalidImage, match="row 0: image: not a JPEG or PNG"):
        local_model.predict(None, pd.DataFrame({"image": [base64.b64encode(b"/etc/passwd")
                                                           .decode()]}))
    with pytest.raises(ValueError, match="exactly one column 'image'"):
        local_model.predict(None, pd.DataFrame({"img": [str(path)]}))
    with pytest.raises(ValueError, match="uint8"):
        local_model.predict(None, [rgb.astype(np.float32)])
    big = _png(tmp_path / "big.png", np.zeros((600, 700, 3), np.uint8))
    small = mlflow.pyfunc.load_model(info.model_uri, model_config={"max_pixels": 400_000})
    with pytest.raises(InvalidImage, match="row 1: image: 700x600 = 420000 pixels is more"):
        small.unwrap_python_model().predict(None, [path.read_bytes(), big.read_bytes()])


def test_log_requires_safetensors(tmp_path, tiny_model_files):
    config, _ = tiny_model_files
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"not used")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        log_detector_model(config, pth, name="m", builder=TINY)
    with pytest.raises(FileNotFoundError, match="config"):
        log_detector_model(tmp_path / "nope.py", pth, name="m", builder=TINY)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mmcv") is None or
                    importlib.util.find_spec("mmdet") is None, reason="needs mmcv + mmdet")
def test_mmdet_detector_through_inference_detector(tmp_path):
    """A real mmdet Mask R-CNN (random init, ResNet-18, built from a packaged config) goes
    through ``inference_detector``: outputs are boxes/labels/scores and RLE masks."""
    import mmdet
    import torch
    from safetensors.torch import save_file

    base = Path(mmdet.__file__).parent / ".mim" / "configs" / "mask_rcnn" / "mask-rcnn_r50_fpn_1x_coco.py"
    cfg_path = tmp_path / "config.py"
    cfg_path.write_text(
        f"_base_ = [{str(base)!r}]\n"
        "c = 32\n"  # narrow FPN/heads: a ~12M-parameter model keeps the test fast
        "model = dict(\n"
        "    backbone=dict(depth=18, init_cfg=None),\n"
        "    neck=dict(in_channels=[64, 128, 256, 512], out_channels=c),\n"
        "    rpn_head=dict(in_channels=c, feat_channels=c),\n"
        "    roi_head=dict(\n"
        "        bbox_roi_extractor=dict(out_channels=c), mask_roi_extractor=dict(out_channels=c),\n"
        "        bbox_head=dict(in_channels=c, fc_out_channels=64, num_classes=2),\n"
        "        mask_head=dict(in_channels=c, conv_out_channels=c, num_classes=2)),\n"
        "    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=20)))\n"
        "metainfo = dict(classes=('cat', 'dog'))\n")
    builder = tmp_path / "mmdet_builder.py"
    builder.write_text(
        "def build(path):\n"
        "    from mmengine.config import Config\n"
        "    from mmengine.registry import init_default_scope\n"
        "    from mmdet.registry import MODELS\n"
        "    cfg = Config.fromfile(path)\n"
        "    init_default_scope('mmdet')\n"
        "    return MODELS.build(cfg.model)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        torch.manual_seed(0)
        model = __import__("mmdet_builder").build(str(cfg_path))
        save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
        with mlflow.start_run(experiment_id=ensure_experiment("tracking-tests-pyfunc")):
            info = log_detector_model(cfg_path, tmp_path / "model.safetensors", name="model",
                                      builder="mmdet_builder:build", include_code=False)
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        out = loaded.unwrap_python_model().predict(None, [img])[0]
    finally:
        sys.path.remove(str(tmp_path))
    n = len(out["scores"])
    assert 0 < n <= 20  # random weights, score_thr 0: some detections
    assert len(out["boxes"]) == len(out["labels"]) == len(out["masks"]) == n
    assert set(out["labels"]) <= {0, 1} and set(out["label_names"]) <= {"cat", "dog"}
    assert all(m["size"] == [96, 128] and isinstance(m["counts"], str) for m in out["masks"])
    assert all(0 <= b[0] <= b[2] <= 128 and 0 <= b[1] <= b[3] <= 96 for b in out["boxes"])
    assert out["scores"] == sorted(out["scores"], reverse=True)
