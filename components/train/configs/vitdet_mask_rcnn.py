# Plain ViT + multi-scale adapter + FPN in the upgraded Mask R-CNN (Li et al. 2021, Fig. 1).
#
# The ViT keeps one stride-16 resolution; four of its blocks (the last of each quarter:
# d/4, d/2, 3d/4, d) are rescaled by the adapter to strides 4, 8, 16, 32 and fed to the FPN.
# Sizes/dims come from params.yaml `model.*` via components/train/config.py.
_base_ = ['./mask_rcnn_base.py']

custom_imports = dict(imports=['components.models', 'components.train'],
                      allow_failed_imports=False)

C = 192  # placeholder: ViT embed dim of model.size, set by config.py

model = dict(
    backbone=dict(
        type='PlainViT',
        size='tiny',
        patch_size=16,
        pretrain_img_size=224,    # windows = pretraining grid (224/16 = 14 tokens)
        attention='hybrid',       # windowed blocks + one global block per quarter
        drop_path_rate=0.1,
        use_rel_pos=False,
        with_cp=False,
        out_indices=None,         # None = quarter ends (2, 5, 8, 11 for depth 12)
        pretrained=None),
    # a list of necks is built as mmengine Sequential: adapter first, then the FPN
    neck=[
        dict(type='ViTFPNAdapter', in_channels=C, mode='multiscale'),
        dict(type='FPN', in_channels=[C, C, C, C], out_channels=256,
             norm_cfg=dict(type='BN', requires_grad=True), num_outs=5),
    ])

optim_wrapper = dict(type='FiniteLossOptimWrapper')
