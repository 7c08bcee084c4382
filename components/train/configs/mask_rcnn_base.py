# Mask R-CNN with the ViTDet-paper head upgrades (arXiv 2111.11429, Sec. 4 / App. A.2), no backbone.
#
# Structure only: every number a user changes is filled in from params.yaml by
# components/train/config.py, which looks transforms/hooks up by `type` (not by list index).
# Placeholders below (IMG, num_classes=1, lr=1e-4, ...) are overwritten there.
#
# Head upgrades vs. the 2017 Mask R-CNN (each switchable from config.py, `model.heads`):
#   - RPN: 2 shared convs instead of 1                         (rpn_head.num_convs)
#   - box head: 4 conv + 1 fc with normalization (Shared4Conv1FC) instead of 2 fc
#   - mask head / FPN: normalization in every conv
# Norm is plain BN: the paper uses SyncBN/LN on 8+ GPUs; we train on one CPU process.
default_scope = 'mmdet'

IMG = 1024          # square LSJ output side; config.py sets finetune.img_size
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # ImageNet statistics (RGB); images are loaded BGR by mmcv.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(),  # set by config.py from the registered backbone family (mask_rcnn.py)
    neck=dict(
        type='FPN',
        in_channels=[256, 256, 256, 256],
        out_channels=256,
        norm_cfg=norm_cfg,
        num_outs=5),  # P2..P5 + P6 by max-pool: strides 4, 8, 16, 32, 64
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        num_convs=2,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
            finest_scale=56),  # RoIs < 2x this (px) read stride 4; x model.geometry_scale
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            norm_cfg=norm_cfg,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
            finest_scale=56),  # RoIs < 2x this (px) read stride 4; x model.geometry_scale
        mask_head=dict(
            type='MaskOptionalFCNMaskHead',  # FCNMaskHead; no loss where a GT has no mask
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            num_classes=1,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        # proposals kept for RoI sampling: mmdet's 2000 pre-NMS boxes are sized for 1333x800
        # images; at <= 512 px there are >= 6x fewer anchors and NMS is ~10% of a CPU step
        rpn_proposal=dict(
            nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    # test proposals: 300 (Faster R-CNN's test setting) instead of 1000; at <= 512 px inputs the
    # box head on 1000 RoIs was ~half of a val pass, and val AP was the same with 300 (measured)
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
            mask_thr_binary=0.5)))

# ---- data: large-scale jitter (LSJ, Ghiasi et al. 2021) as in the ViTDet paper -------------
# resize the long side to IMG * U(lsj_scale) keeping the aspect ratio, crop an IMG x IMG
# window (objects cut at the border keep their visible part), flip, pad to IMG x IMG.
PAD = dict(img=(124, 116, 104))   # ~ImageNet mean in BGR: padded pixels normalise to ~0
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=(IMG, IMG), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(IMG, IMG),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=(IMG, IMG), pad_val=PAD),
    dict(type='PackDetInputs'),
]
# No LoadAnnotations at test time: CocoMetric reads ground truth from the ann_file, and
# mmdet.apis.inference_detector reuses this pipeline on bare images.
# No Pad transform either: mmdet's Pad overwrites `img_shape` with the padded shape, so boxes
# predicted in the padding of a non-square image survive clipping and crash mask pasting. The
# data preprocessor pads the batch (pad_size_divisor) and keeps `img_shape` the valid region.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(IMG, IMG), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

_dataset = dict(type='ContractCocoDataset',  # CocoDataset + the COCO record contract
                data_root='', data_prefix=dict(img='images/'))
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _dataset,
        ann_file='annotations/instances_train.json',
        # images without any instance teach nothing but background: skip them (as COCO LSJ)
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _dataset,
        ann_file='annotations/instances_val.json',
        test_mode=True,   # keeps every image: AP counts images without objects too
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ContractCocoMetric', ann_file='', metric=['bbox', 'segm'], format_only=False)
test_evaluator = val_evaluator

# ---- schedule ---------------------------------------------------------------------------------
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    # no weight decay on normalisation weights, biases and position embeddings (ViTDet, MAE)
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0), 'rel_pos': dict(decay_mult=0.0)},
        layer_decay_rate=0.0))   # 0 = off; set from finetune.layer_decay
# linear warm-up then half-period cosine to 0, both counted in iterations (config.py)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=1, end=2, T_max=1, eta_min=0.0),
]

# ---- runtime ----------------------------------------------------------------------------------
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the latest checkpoint (resume) and the best val bbox AP
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, max_keep_ckpts=1,
                    save_last=True, save_best='coco/bbox_mAP', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
custom_hooks = []
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends)  # name: per-run
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
randomness = dict(seed=0, deterministic=False)
load_from = None
resume = False
