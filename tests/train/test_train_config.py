"""params.yaml -> mmengine Config: every user value reaches the config by name."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from components.common.params import load_params
from components.data import layout
from components.models import ADAPTER_MODES, BACKBONES
from components.train.config import HEAD_VARIANTS, build_config, count_train_images, find_transform
from components.train.schedule import make_schedule
from testkit.finetune import tiny_params


@pytest.fixture
def params(tiny_ds, tmp_path):
    return tiny_params(load_params(), tiny_ds.root, tmp_path / "work")


def test_values_reach_config(params, tiny_ds, tmp_path):
    p = tiny_params(load_params(), tiny_ds.root, tmp_path / "work", finetune__lr=3e-4,
                    finetune__betas=[0.8, 0.95], finetune__weight_decay=0.05,
                    finetune__img_size=160, finetune__lsj_scale=[0.5, 1.5],
                    finetune__batch_size=3, finetune__epochs=5, finetune__val_interval=2,
                    finetune__checkpoint_interval=2, finetune__nan_patience=4,
                    finetune__layer_decay=0.7, model__drop_path=0.2, model__attention="windowed",
                    model__activation_checkpointing=True, model__attn_impl="naive",
                    model__roi_samples=48, seed=7)
    cfg = build_config(p)
    opt = cfg.optim_wrapper
    assert opt.optimizer.lr == 3e-4 and opt.optimizer.betas == (0.8, 0.95)
    assert opt.optimizer.weight_decay == 0.05 and opt.paramwise_cfg.layer_decay_rate == 0.7
    assert opt.paramwise_cfg.norm_decay_mult == 0 and opt.paramwise_cfg.bias_decay_mult == 0
    assert opt.paramwise_cfg.custom_keys["pos_embed"]["decay_mult"] == 0
    train = cfg.train_dataloader.dataset.pipeline
    assert find_transform(train, "RandomResize")["scale"] == (160, 160)
    assert find_transform(train, "RandomResize")["ratio_range"] == (0.5, 1.5)
    assert find_transform(train, "RandomCrop")["crop_size"] == (160, 160)
    assert find_transform(train, "RandomCrop")["allow_negative_crop"] is True
    assert find_transform(train, "Pad")["size"] == (160, 160)
    assert find_transform(cfg.test_dataloader.dataset.pipeline, "Resize")["scale"] == (160, 160)
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.train_cfg.max_epochs == 5 and cfg.train_cfg.val_interval == 2
    assert cfg.default_hooks.checkpoint.interval == 2
    assert cfg.default_hooks.checkpoint.save_best == "coco/bbox_mAP"
    assert {"type": "NonFiniteLossGuardHook", "patience": 4} in cfg.custom_hooks
    assert cfg.randomness.seed == 7
    bb = cfg.model.backbone
    assert bb.type == "PlainViT" and bb.drop_path_rate == 0.2 and bb.attention == "windowed"
    assert bb.with_cp is True and bb.attn_impl == "naive"
    assert bb.embed_dim == 64  # model.cfg_options, and the neck follows it
    assert cfg.model.neck[0].in_channels == 64 and cfg.model.neck[1].in_channels == [64] * 4
    assert cfg.model.neck[1].out_channels == cfg.model.rpn_head.in_channels == 32
    assert cfg.model.roi_head.bbox_head.fc_out_channels == 4 * 32   # model.fpn_channels
    assert cfg.model.roi_head.mask_head.conv_out_channels == 32
    assert cfg.model.train_cfg.rcnn.sampler.num == 48                 # model.roi_samples
    # classes come from the COCO json, ordered by category id
    assert cfg.model.roi_head.bbox_head.num_classes == len(cfg.metainfo.classes) == 8
    assert cfg.metainfo.classes[0] == "circle"
    ds = cfg.train_dataloader.dataset
    assert ds.data_root == str(tiny_ds.root.resolve())
    assert ds.ann_file == "annotations/instances_train.json" and ds.data_prefix.img == "images/"
    assert ds.filter_cfg.filter_empty_gt is True
    assert cfg.val_evaluator.metric == ["bbox", "segm"]
    assert cfg.val_evaluator.ann_file.endswith("instances_val.json")


def test_iteration_arithmetic(params):
    cfg = build_config(dict(params, finetune=dict(params["finetune"], epochs=4,
                                                  warmup_epochs=0.5, batch_size=4)))
    # 6 train images / batch 4 -> 2 iters/epoch; 4 epochs -> 8; warm-up 0.5 epoch -> 1 iter
    assert cfg.schedule == dict(num_train_images=6, batch_size=4, epochs=4, iters_per_epoch=2,
                                total_iters=8, warmup_iters=1)
    warm, cos = cfg.param_scheduler
    assert (warm.type, warm.begin, warm.end, warm.by_epoch) == ("LinearLR", 0, 1, False)
    assert (cos.type, cos.begin, cos.end, cos.T_max, cos.eta_min) == \
        ("CosineAnnealingLR", 1, 8, 7, 0.0)


def test_schedule_formula_default_sizes():
    s = make_schedule(240, 4, 12, 0.25)
    assert (s.iters_per_epoch, s.total_iters, s.warmup_iters) == (60, 720, 15)
    s = make_schedule(241, 4, 1, 0.0)
    assert s.iters_per_epoch == math.ceil(241 / 4) and s.warmup_iters == 0
    with pytest.raises(ValueError, match="no training images"):
        make_schedule(0, 4, 1, 0.1)


def test_train_image_count_matches_mmdet_dataset(params):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    cfg = build_config(params)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    ann = layout.coco_json(Path(cfg.train_dataloader.dataset.data_root), "train")
    assert len(ds) == count_train_images(ann) == cfg.schedule["num_train_images"]
    assert ds.metainfo["classes"] == cfg.metainfo.classes


@pytest.mark.parametrize("variant", sorted(HEAD_VARIANTS))
def test_head_variants_build(params, variant):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    cfg = build_config(dict(params, model=dict(params["model"], heads=variant)))
    model = MODELS.build(cfg.model)
    bbox = type(model.roi_head.bbox_head).__name__
    assert bbox == {"paper": "Shared4Conv1FCBBoxHead", "classic": "Shared2FCBBoxHead"}[variant]
    assert model.rpn_head.num_convs == {"paper": 2, "classic": 1}[variant]


def test_unknown_head_variant(params):
    with pytest.raises(ValueError, match="model.heads"):
        build_config(dict(params, model=dict(params["model"], heads="fancy")))
    with pytest.raises(ValueError, match="unknown switches"):
        build_config(dict(params, model=dict(params["model"], heads={"box_8conv": True})))


@pytest.mark.parametrize("switch", ["fpn_norm", "rpn_2conv", "box_4conv1fc", "mask_norm"])
def test_each_head_upgrade_switches_alone(params, switch):
    """Turning one upgrade off changes its module only (the paper's per-module comparison)."""
    def parts(heads):
        m = build_config(dict(params, model=dict(params["model"], heads=heads))).model
        return {"fpn_norm": "norm_cfg" in m.neck[-1], "rpn_2conv": m.rpn_head.num_convs == 2,
                "box_4conv1fc": m.roi_head.bbox_head.type == "Shared4Conv1FCBBoxHead",
                "mask_norm": "norm_cfg" in m.roi_head.mask_head}

    assert all(parts("paper").values()) and not any(parts("classic").values())
    got = parts({switch: False})
    assert got == {k: k != switch for k in got}


@pytest.mark.parametrize("layout_name", sorted(ADAPTER_MODES))
def test_adapter_layouts_train_a_step(params, layout_name):
    """Table 2 variants: each builds, its pyramid has the right strides, and a loss step runs
    end to end on real data (anchors and RoI extractors agree with the feature maps)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    init_default_scope("mmdet")
    cfg = build_config(dict(params, model=dict(params["model"], adapter=layout_name)))
    model = MODELS.build(cfg.model)
    model.init_weights()
    strides = {"single": [16]}.get(layout_name, [4, 8, 16, 32])
    assert list(model.neck[0].strides) == strides
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == strides
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    data = model.data_preprocessor(batch, True)
    feats = model.extract_feat(data["inputs"])
    assert len(feats) == (1 if layout_name == "single" else 5)
    losses, _ = model.parse_losses(model(**data, mode="loss"))
    assert torch.isfinite(losses)
    losses.backward()


def test_unknown_adapter_layout(params):
    with pytest.raises(ValueError, match="model.adapter"):
        build_config(dict(params, model=dict(params["model"], adapter="fancy")))


@pytest.mark.parametrize("value, img, factor", [("auto", 256, 0.25), ("auto", 1024, 1.0), (0.5, 256, 0.5)])
def test_geometry_scale(params, value, img, factor):
    """Anchors and RoI-level thresholds follow the input size ('auto' = img_size / 1024), so a
    256 px run gets the paper's 1024 px geometry scaled down, not 32-512 px anchors."""
    p = dict(params, model=dict(params["model"], geometry_scale=value),
             finetune=dict(params["finetune"], img_size=img))
    model = build_config(p).model
    roi, anchors = model.roi_head, model.rpn_head.anchor_generator
    assert anchors.scales == [8 * factor]  # x strides 4..64: 32-512 px at factor 1
    assert roi.bbox_roi_extractor.finest_scale == roi.mask_roi_extractor.finest_scale == 56 * factor
    single = build_config(dict(p, model=dict(p["model"], adapter="single")))
    assert single.model.rpn_head.anchor_generator.scales == [s * factor for s in (2, 4, 8, 16, 32)]


def test_geometry_scale_rejects_nonpositive(params):
    with pytest.raises(ValueError, match="geometry_scale"):
        build_config(dict(params, model=dict(params["model"], geometry_scale=0)))


def test_rel_pos_reaches_the_built_backbone(params):
    """model.rel_pos switches the decomposed relative position bias on (paper recipe option)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    on = build_config(dict(params, model=dict(params["model"], rel_pos=True)))
    off = build_config(dict(params, model=dict(params["model"], rel_pos=False)))
    assert on.model.backbone.use_rel_pos is True and off.model.backbone.use_rel_pos is False
    names_on = {n for n, _ in MODELS.build(on.model).backbone.named_parameters()}
    names_off = {n for n, _ in MODELS.build(off.model).backbone.named_parameters()}
    assert {n for n in names_on - names_off if ".rel_pos_" in n} == names_on - names_off != set()


@pytest.mark.parametrize("family", sorted(BACKBONES))
def test_every_backbone_family_trains_a_mask_rcnn_step(params, family):
    """Mask R-CNN consumes the backbone contract only: each registered family builds, its
    pyramid feeds the FPN/anchors/RoI extractors, and a loss + backward step runs."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    init_default_scope("mmdet")
    size = next(iter(BACKBONES[family].variants))
    model_params = dict(params["model"], backbone=family, size=size)
    if family != "vit":
        model_params["cfg_options"] = {}  # the tiny-ViT dims are for the ViT only
    cfg = build_config(dict(params, model=model_params))
    _, pyramid = BACKBONES[family].pyramid(cfg.model.backbone.to_dict(), model_params)
    strides = [s for _, s in pyramid.values()]
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == strides
    assert cfg.model.rpn_head.anchor_generator.strides[:len(strides)] == strides
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    data = model.data_preprocessor(batch, True)
    losses, _ = model.parse_losses(model(**data, mode="loss"))
    assert torch.isfinite(losses)
    losses.backward()
