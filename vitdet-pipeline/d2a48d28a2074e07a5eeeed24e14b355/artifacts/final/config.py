custom_hooks = [
    dict(patience=3, type='NonFiniteLossGuardHook'),
    dict(interval=1, type='MLflowMetricsHook'),
    dict(type='ValBeforeTrainHook'),
]
custom_imports = dict(
    allow_failed_imports=False,
    imports=[
        'components.models',
        'components.train',
    ])
default_hooks = dict(
    checkpoint=dict(
        by_epoch=True,
        interval=1,
        max_keep_ckpts=1,
        rule='greater',
        save_best='coco/bbox_mAP',
        save_last=True,
        type='CheckpointHook'),
    logger=dict(ignore_last=False, interval=1, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'),
    visualization=dict(type='DetVisualizationHook'))
default_scope = 'mmdet'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='gloo'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=True, type='LogProcessor', window_size=1)
metainfo = dict(
    classes=(
        'circle',
        'ellipse',
        'ring',
        'triangle',
        '三角形',
        'hexagon',
        'star',
        'cross',
    ))
model = dict(
    backbone=dict(
        attention='hybrid',
        attn_impl='fused',
        depth=4,
        drop_path_rate=0.0,
        embed_dim=64,
        num_heads=2,
        out_indices=None,
        patch_size=16,
        pretrain_img_size=64,
        pretrained=None,
        size='tiny',
        type='PlainViT',
        use_rel_pos=False,
        with_cp=False),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[
            123.675,
            116.28,
            103.53,
        ],
        pad_mask=True,
        pad_size_divisor=32,
        std=[
            58.395,
            57.12,
            57.375,
        ],
        type='DetDataPreprocessor'),
    neck=[
        dict(in_channels=64, mode='multiscale', type='ViTFPNAdapter'),
        dict(
            in_channels=[
                64,
                64,
                64,
                64,
            ],
            norm_cfg=dict(requires_grad=True, type='BN'),
            num_outs=5,
            out_channels=32,
            type='FPN'),
    ],
    roi_head=dict(
        bbox_head=dict(
            bbox_coder=dict(
                target_means=[
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
                target_stds=[
                    0.1,
                    0.1,
                    0.2,
                    0.2,
                ],
                type='DeltaXYWHBBoxCoder'),
            conv_out_channels=32,
            fc_out_channels=128,
            in_channels=32,
            loss_bbox=dict(loss_weight=1.0, type='L1Loss'),
            loss_cls=dict(
                loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
            norm_cfg=dict(requires_grad=True, type='BN'),
            num_classes=8,
            reg_class_agnostic=False,
            roi_feat_size=7,
            type='Shared4Conv1FCBBoxHead'),
        bbox_roi_extractor=dict(
            featmap_strides=[
                4,
                8,
                16,
                32,
            ],
            finest_scale=56.0,
            out_channels=32,
            roi_layer=dict(output_size=7, sampling_ratio=0, type='RoIAlign'),
            type='SingleRoIExtractor'),
        mask_head=dict(
            conv_out_channels=32,
            in_channels=32,
            loss_mask=dict(
                loss_weight=1.0, type='CrossEntropyLoss', use_mask=True),
            norm_cfg=dict(requires_grad=True, type='BN'),
            num_classes=8,
            num_convs=4,
            type='MaskOptionalFCNMaskHead'),
        mask_roi_extractor=dict(
            featmap_strides=[
                4,
                8,
                16,
                32,
            ],
            finest_scale=56.0,
            out_channels=32,
            roi_layer=dict(output_size=14, sampling_ratio=0, type='RoIAlign'),
            type='SingleRoIExtractor'),
        type='StandardRoIHead'),
    rpn_head=dict(
        anchor_generator=dict(
            ratios=[
                0.5,
                1.0,
                2.0,
            ],
            scales=[
                8.0,
            ],
            strides=[
                4,
                8,
                16,
                32,
                64,
            ],
            type='AnchorGenerator'),
        bbox_coder=dict(
            target_means=[
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            target_stds=[
                1.0,
                1.0,
                1.0,
                1.0,
            ],
            type='DeltaXYWHBBoxCoder'),
        feat_channels=32,
        in_channels=32,
        loss_bbox=dict(loss_weight=1.0, type='L1Loss'),
        loss_cls=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=True),
        num_convs=2,
        type='RPNHead'),
    test_cfg=dict(
        rcnn=dict(
            mask_thr_binary=0.5,
            max_per_img=100,
            nms=dict(iou_threshold=0.5, type='nms'),
            score_thr=0.05),
        rpn=dict(
            max_per_img=100,
            min_bbox_size=0,
            nms=dict(iou_threshold=0.7, type='nms'),
            nms_pre=200)),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(
                ignore_iof_thr=-1,
                match_low_quality=True,
                min_pos_iou=0.5,
                neg_iou_thr=0.5,
                pos_iou_thr=0.5,
                type='MaxIoUAssigner'),
            debug=False,
            mask_size=28,
            pos_weight=-1,
            sampler=dict(
                add_gt_as_proposals=True,
                neg_pos_ub=-1,
                num=64,
                pos_fraction=0.25,
                type='RandomSampler')),
        rpn=dict(
            allowed_border=-1,
            assigner=dict(
                ignore_iof_thr=-1,
                match_low_quality=True,
                min_pos_iou=0.3,
                neg_iou_thr=0.3,
                pos_iou_thr=0.7,
                type='MaxIoUAssigner'),
            debug=False,
            pos_weight=-1,
            sampler=dict(
                add_gt_as_proposals=False,
                neg_pos_ub=-1,
                num=256,
                pos_fraction=0.5,
                type='RandomSampler')),
        rpn_proposal=dict(
            max_per_img=100,
            min_bbox_size=0,
            nms=dict(iou_threshold=0.7, type='nms'),
            nms_pre=200)),
    type='MaskRCNN')
optim_wrapper = dict(
    clip_grad=dict(max_norm=5.0, norm_type=2),
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        betas=(
            0.9,
            0.999,
        ), lr=0.0005, type='AdamW', weight_decay=0.1),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        custom_keys=dict(
            pos_embed=dict(decay_mult=0.0), rel_pos=dict(decay_mult=0.0)),
        layer_decay_rate=0.0,
        norm_decay_mult=0.0),
    type='FiniteLossOptimWrapper')
param_scheduler = [
    dict(begin=0, by_epoch=False, end=2, start_factor=0.001, type='LinearLR'),
    dict(
        T_max=1,
        begin=2,
        by_epoch=False,
        end=3,
        eta_min=0.0,
        type='CosineAnnealingLR'),
]
randomness = dict(deterministic=False, seed=0)
resume = False
schedule = dict(
    batch_size=2,
    epochs=1,
    iters_per_epoch=3,
    num_train_images=6,
    total_iters=3,
    warmup_iters=2)
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=2,
    dataset=dict(
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/'),
        data_root='/tmp/vitdet-fuzz-t1_xzg31/ex1/ds',
        metainfo=dict(
            classes=(
                'circle',
                'ellipse',
                'ring',
                'triangle',
                '三角形',
                'hexagon',
                'star',
                'cross',
            )),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                128,
                128,
            ), type='Resize'),
            dict(
                meta_keys=(
                    'img_id',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                ),
                type='PackDetInputs'),
        ],
        test_mode=True,
        type='ContractCocoDataset'),
    drop_last=False,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    ann_file='/tmp/vitdet-fuzz-t1_xzg31/ex1/ds/annotations/instances_val.json',
    format_only=False,
    metric=[
        'bbox',
        'segm',
    ],
    type='ContractCocoMetric')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(keep_ratio=True, scale=(
        128,
        128,
    ), type='Resize'),
    dict(
        meta_keys=(
            'img_id',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
        ),
        type='PackDetInputs'),
]
train_cfg = dict(max_epochs=1, type='EpochBasedTrainLoop', val_interval=1)
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/'),
        data_root='/tmp/vitdet-fuzz-t1_xzg31/ex1/ds',
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        metainfo=dict(
            classes=(
                'circle',
                'ellipse',
                'ring',
                'triangle',
                '三角形',
                'hexagon',
                'star',
                'cross',
            )),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(
                keep_ratio=True,
                ratio_range=(
                    1.0,
                    1.0,
                ),
                scale=(
                    128,
                    128,
                ),
                type='RandomResize'),
            dict(
                allow_negative_crop=True,
                crop_size=(
                    128,
                    128,
                ),
                crop_type='absolute_range',
                recompute_bbox=True,
                type='RandomCrop'),
            dict(min_gt_bbox_wh=(
                0.01,
                0.01,
            ), type='FilterAnnotations'),
            dict(prob=0.5, type='RandomFlip'),
            dict(
                pad_val=dict(img=(
                    124,
                    116,
                    104,
                )),
                size=(
                    128,
                    128,
                ),
                type='Pad'),
            dict(type='PackDetInputs'),
        ],
        type='ContractCocoDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=True, type='DefaultSampler'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        keep_ratio=True,
        ratio_range=(
            1.0,
            1.0,
        ),
        scale=(
            128,
            128,
        ),
        type='RandomResize'),
    dict(
        allow_negative_crop=True,
        crop_size=(
            128,
            128,
        ),
        crop_type='absolute_range',
        recompute_bbox=True,
        type='RandomCrop'),
    dict(min_gt_bbox_wh=(
        0.01,
        0.01,
    ), type='FilterAnnotations'),
    dict(prob=0.5, type='RandomFlip'),
    dict(pad_val=dict(img=(
        124,
        116,
        104,
    )), size=(
        128,
        128,
    ), type='Pad'),
    dict(type='PackDetInputs'),
]
val_cfg = dict(type='ValLoop')
val_dataloader = dict(
    batch_size=2,
    dataset=dict(
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/'),
        data_root='/tmp/vitdet-fuzz-t1_xzg31/ex1/ds',
        metainfo=dict(
            classes=(
                'circle',
                'ellipse',
                'ring',
                'triangle',
                '三角形',
                'hexagon',
                'star',
                'cross',
            )),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                128,
                128,
            ), type='Resize'),
            dict(
                meta_keys=(
                    'img_id',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                ),
                type='PackDetInputs'),
        ],
        test_mode=True,
        type='ContractCocoDataset'),
    drop_last=False,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    ann_file='/tmp/vitdet-fuzz-t1_xzg31/ex1/ds/annotations/instances_val.json',
    format_only=False,
    metric=[
        'bbox',
        'segm',
    ],
    type='ContractCocoMetric')
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=[
        dict(type='LocalVisBackend'),
    ])
work_dir = '/tmp/vitdet-fuzz-t1_xzg31/ex1/work'
