"""Detection backbones and necks: backbone families behind one contract
(:mod:`components.models.backbones`: the paper's plain ViT as ``'PlainViT'``, mmdet's ResNet as
``'SafeResNet'``, timm's MobileViT / MobileNetV2), the ViT's multi-scale adapter
(``'ViTFPNAdapter'``), SSDLite glue (:mod:`.ssd`) and safe weight loading.

Importing this package registers the modules in ``mmdet.registry.MODELS`` when mmdet is
installed (configs: ``custom_imports=dict(imports=['components.models'])``); without mmdet
the ViT and the adapter are plain PyTorch.
"""
from components.models.adapter import ADAPTER_MODES, ViTFPNAdapter
from components.models.backbones import BACKBONES, BackboneFamily, family_of, get_backbone
from components.models.backbones.vit import (ATTENTION_MODES, ATTN_IMPLS, SIZES, ViT, ViTSize,
                                             encoder_param_count, get_size, global_block_indices,
                                             layer_id)
from components.models import ssd  # noqa: F401  (SelectLevels, PredictableSSDHead)
from components.models.weights import LoadReport, load_backbone_weights, save_backbone_weights

__all__ = [
    "ADAPTER_MODES", "ATTENTION_MODES", "ATTN_IMPLS", "BACKBONES", "BackboneFamily", "SIZES",
    "LoadReport", "ViT", "ViTFPNAdapter", "ViTSize", "encoder_param_count", "family_of",
    "get_backbone", "get_size", "global_block_indices", "layer_id", "load_backbone_weights",
    "save_backbone_weights",
]
