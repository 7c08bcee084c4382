"""Detection backbones and necks: the paper's plain ViT (registered as ``'PlainViT'``) and its
multi-scale adapter (``'ViTFPNAdapter'``), model sizes as data, and safe weight loading.

Importing this package registers both modules in ``mmdet.registry.MODELS`` when mmdet is
installed (configs: ``custom_imports=dict(imports=['components.models'])``); without mmdet
everything here is plain PyTorch.
"""
from components.models.adapter import ADAPTER_MODES, ViTFPNAdapter
from components.models.sizes import SIZES, ViTSize, encoder_param_count, get_size
from components.models.vit import ATTENTION_MODES, ATTN_IMPLS, ViT, global_block_indices, layer_id
from components.models.weights import LoadReport, load_backbone_weights, save_backbone_weights

__all__ = [
    "ADAPTER_MODES", "ATTENTION_MODES", "ATTN_IMPLS", "SIZES", "LoadReport", "ViT",
    "ViTFPNAdapter", "ViTSize", "encoder_param_count", "get_size", "global_block_indices",
    "layer_id", "load_backbone_weights", "save_backbone_weights",
]
