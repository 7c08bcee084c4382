"""Backbone pretraining: every way to initialise a backbone is a registered method.

The ViT-transfer paper's five: ``random`` (fresh init), ``supervised`` (multi-label image-level
labels), ``mocov3`` (momentum contrast), ``mae`` (masked autoencoder) and ``beit`` (masked
prediction of visual tokens from our own VQ-VAE ``tokenizer`` stage); object-aware cropping's
``mocov2`` and ``byol`` (two views from the crop policies of :mod:`.crops`); Florence's
``unicl`` (image-text contrastive, :mod:`components.imagetext`). Every method writes ``pretrained/<method>/backbone.safetensors``
with the detection backbone's exact key names, loadable by
:func:`components.models.weights.load_backbone_weights` (``model.checkpoint`` in params.yaml).

Layout: :mod:`.registry` (the extension point), :mod:`.config` (params + defaults),
:mod:`.common` (backbone + token helpers), one file per method, :mod:`.tokenizer` (BEiT's
VQ-VAE + its stage), :mod:`.engine` (the training loop), :mod:`.stage` (one run -> outputs),
``__main__`` (CLI + MLflow). Model files import only torch (and components.models).

CLI: ``python -m components.pretrain --params params.yaml --method mae [--set k=v]``.
"""
from components.pretrain import (beit, byol, mae, mocov2, mocov3, random_init,  # noqa: F401
                                 supervised, unicl)  # (register)
from components.pretrain.config import PretrainConfig, config_from_params
from components.pretrain.registry import METHODS, MethodSpec, get_method, register_method

__all__ = ["METHODS", "MethodSpec", "PretrainConfig", "config_from_params", "get_method",
           "register_method"]
