"""SSDLite (model.detector: ssdlite) on the backbone contract: config, training, evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.common.params import load_params
from components.models import BACKBONES
from components.train.config import build_config, find_transform
from components.train.detectors import DETECTORS, SSD_STRIDES, ssd_level_strides
from testkit.finetune import tiny_params

SSD = {"model__detector": "ssdlite", "model__cfg_options": {}}


def _cfg(tiny_ds, tmp_path, **overrides):
    return build_config(tiny_params(load_params(), tiny_ds.root, tmp_path / "work",
                                    **{**SSD, **overrides}))


def test_detectors_are_registered_with_their_metrics_and_model_names():
    assert list(DETECTORS) == ["mask_rcnn", "ssdlite"]
    assert DETECTORS["mask_rcnn"].metrics == ("bbox", "segm")
    assert DETECTORS["ssdlite"].metrics == ("bbox",)
    assert DETECTORS["ssdlite"].registered_name != DETECTORS["mask_rcnn"].registered_name
    with pytest.raises(KeyError, match="unknown detector 'yolo'; known: mask_rcnn, ssdlite"):
        DETECTORS.get("yolo")


@pytest.mark.parametrize("backbone,size", [("mobilevit", "xxs"), ("mobilevit", "s"),
                                           ("mobilenetv2", "1.0"), ("resnet", "r18")])
def test_ssdlite_reads_the_stride_16_and_32_maps_of_any_family(tiny_ds, tmp_path, backbone, size):
    cfg = _cfg(tiny_ds, tmp_path, model__backbone=backbone, model__size=size,
               model__ssd_width=0.5)
    family = BACKBONES[backbone]
    shape = list(family.output_shape(cfg.model.backbone.to_dict()).values())
    select, neck = cfg.model.neck[-2], cfg.model.neck[-1]
    assert select.type == "SelectLevels" and neck.type == "SSDNeck"
    assert [shape[i][1] for i in select.indices] == list(SSD_STRIDES)
    channels = [shape[i][0] for i in select.indices]
    assert list(neck.in_channels) == channels
    assert list(neck.out_channels) == channels + [256, 128, 128, 64]  # ssd_width 0.5
    head = cfg.model.bbox_head
    assert head.type == "PredictableSSDHead" and list(head.in_channels) == list(neck.out_channels)
    assert head.num_classes == len(cfg.metainfo.classes) == 8
    # anchors sized for the 128 px input: mmdet's 320 px sizes x 0.4
    assert head.anchor_generator.strides == [16, 32, 64, 128, 128, 128]
    assert head.anchor_generator.min_sizes[0] == pytest.approx(48 * 128 / 320)
    # boxes only, end to end
    assert find_transform(cfg.train_dataloader.dataset.pipeline, "LoadAnnotations")["with_mask"] is False
    assert cfg.val_evaluator.metric == ["bbox"] and cfg.test_evaluator.metric == ["bbox"]


def test_mask_rcnn_still_loads_masks(tiny_ds, tmp_path):
    cfg = build_config(tiny_params(load_params(), tiny_ds.root, tmp_path / "work"))
    assert cfg.model.type == "MaskRCNN"
    assert find_transform(cfg.train_dataloader.dataset.pipeline, "LoadAnnotations")["with_mask"]
    assert cfg.val_evaluator.metric == ["bbox", "segm"]


def test_level_strides_follow_the_feature_map_sizes():
    assert ssd_level_strides(320) == [16, 32, 64, 107, 160, 320]  # mmdet's 320 px config
    assert ssd_level_strides(256) == [16, 32, 64, 128, 256, 256]


def test_a_backbone_without_both_strides_is_refused_with_what_to_do(tiny_ds, tmp_path):
    with pytest.raises(ValueError, match=r"stride-16 and stride-32 maps.*gives strides \[16\]"):
        _cfg(tiny_ds, tmp_path, model__backbone="vit", model__size="tiny",
             model__adapter="single")


def test_ssdlite_on_mobilevit_trains_evaluates_and_registers_its_own_champion(tiny_ds, tmp_path):
    """One tiny epoch: the run finishes, predicts (mmdet 3.3.0's SSDHead alone would crash in
    val), the evaluation scores bbox only, and the model becomes the champion of its own
    registered name, which loads by alias and predicts boxes (no masks)."""
    import mlflow
    import pandas as pd

    from components.evaluate.stage import evaluate
    from components.tracking.cli import register_stage
    from components.train.finetune import finetune

    params = tiny_params(load_params(), tiny_ds.root, tmp_path / "work", model__backbone="mobilevit",
                         model__size="xxs", register__min_ap=0.0,
                         register__out=str(tmp_path / "register"), **SSD)
    result = finetune(params, validation_marker=tiny_ds.marker)
    meta = result.meta
    assert all(v == v for v in meta["final_losses"].values())  # finite (no NaN)
    assert set(meta["final_losses"]) >= {"loss_cls", "loss_bbox"}
    metrics = evaluate(params)
    assert 0.0 <= metrics["bbox_mAP"] <= 1.0 and "segm_mAP" not in metrics
    columns = json.loads((Path(params["evaluate"]["out"]) / "metrics.json").read_text())
    assert "AP" in columns and "mask_AP" not in columns
    assert (Path(params["evaluate"]["out"]) / "plots" / "predictions.png").is_file()

    decision = register_stage(params)
    assert decision["model_name"] == "vitdet-ssdlite" and decision["promoted"], decision
    champion = mlflow.pyfunc.load_model("models:/vitdet-ssdlite@champion")
    image = next((tiny_ds.root / "images").rglob("*.jpg"))
    (pred,) = champion.predict(pd.DataFrame({"image": [image.read_bytes()]}))  # as MLflow sends
    assert len(pred["boxes"]) == len(pred["scores"]) == len(pred["labels"]) > 0
    assert pred["masks"] == []

    # the champion exports to ONNX and ONNX Runtime computes what PyTorch computes
    from components.export import export_onnx, load_champion, verify_onnx

    detector, cfg = load_champion("models:/vitdet-ssdlite@champion")
    onnx_file = export_onnx(detector, tmp_path / "ssdlite.onnx", 128)
    images = sorted((tiny_ds.root / "images").rglob("*.jpg"))[:3]
    report = verify_onnx(detector, onnx_file, images, 128, runs=2)
    assert report.opset >= 17 and report.outputs == 12  # 6 levels x (scores, boxes)
    assert report.max_abs_diff < 1e-3 and report.same_labels
    assert report.detections_compared > 0 and report.max_box_diff_px < 0.5
    assert set(report.latency_ms) == {"pytorch", "onnxruntime"}
