# SSDLite (MobileNetV2 paper Sec. 6.3; the detector of the MobileViT paper, Sec. 4.2.1) on any
# registered backbone that gives stride-16 and stride-32 maps.
#
# Shares mask_rcnn_base.py's data pipeline, loops, optimiser and hooks; only the model differs.
# Numbers follow mmdet's configs/ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py (extra
# levels 512/256/256/128 by depthwise-separable convs, BN + ReLU6, 6 anchors per cell, hard
# negative mining 3:1); components/train/detectors.py sets the backbone (from the backbone
# contract), picks its stride-16/32 maps (SelectLevels), sizes the extra levels and anchors for
# finetune.img_size, and the class count. Boxes only: no masks are loaded or scored.
_base_ = ['./mask_rcnn_base.py']

custom_imports = dict(imports=['components.models', 'components.train'],
                      allow_failed_imports=False)

_ssd_norm = dict(type='BN', eps=0.001, momentum=0.03)
model = dict(
    _delete_=True,
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(),  # set by config.py from the registered backbone family
    neck=dict(
        type='SSDNeck',
        in_channels=(96, 320),                          # set from the backbone contract
        out_channels=(96, 320, 512, 256, 256, 128),     # set from the backbone + model.ssd_width
        level_strides=(2, 2, 2, 2),
        level_paddings=(1, 1, 1, 1),
        l2_norm_scale=None,
        use_depthwise=True,
        norm_cfg=_ssd_norm,
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='TruncNormal', layer='Conv2d', std=0.03)),
    bbox_head=dict(
        type='PredictableSSDHead',  # SSDHead + the mmdet 3.3.0 predict fix (components/models/ssd.py)
        in_channels=(96, 320, 512, 256, 256, 128),
        num_classes=80,
        use_depthwise=True,
        norm_cfg=_ssd_norm,
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.001),
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            strides=[16, 32, 64, 107, 160, 320],        # set for finetune.img_size
            ratios=[[2, 3], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]],
            min_sizes=[48, 100, 150, 202, 253, 304],    # x img_size / 320 x geometry_scale
            max_sizes=[100, 150, 202, 253, 304, 320]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=200))

optim_wrapper = dict(type='FiniteLossOptimWrapper')
default_scope = 'mmdet'
