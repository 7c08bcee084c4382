# Mask R-CNN with the paper's upgraded heads on any registered backbone (Li et al. 2021, Fig. 1).
#
# The backbone and the necks before the FPN come from the backbone contract
# (components/models/backbones): components/train/config.py puts `family.config(params.model)`
# here and prepends `family.pyramid(...)`'s necks to the FPN of mask_rcnn_base.py. For the plain
# ViT that is its multi-scale adapter (four stride-16 block outputs -> strides 4, 8, 16, 32);
# a CNN's stages already are a pyramid. Numbers come from params.yaml `model.*`.
_base_ = ['./mask_rcnn_base.py']

custom_imports = dict(imports=['components.models', 'components.train'],
                      allow_failed_imports=False)

model = dict(backbone=dict())  # set by config.py from the registered backbone family

optim_wrapper = dict(type='FiniteLossOptimWrapper')
