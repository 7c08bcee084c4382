"""Backbone pretraining: five ways to initialise the PlainViT, each a registered method.

``random`` (fresh init), ``supervised`` (multi-label image-level labels), ``mocov3`` (momentum
contrast), ``mae`` (masked autoencoder) and ``beit`` (masked prediction of visual tokens from our
own VQ-VAE ``tokenizer`` stage). Every method writes ``pretrained/<method>/backbone.safetensors``
with the detection backbone's exact key names, loadable by
:func:`components.models.weights.load_backbone_weights` (``model.checkpoint`` in params.yaml).

Layout: :mod:`.registry` (the extension point), :mod:`.config` (params + defaults),
:mod:`.common` (backbone + token helpers), one file per method, :mod:`.tokenizer` (BEiT's
VQ-VAE + its stage), :mod:`.engine` (the training loop), :mod:`.stage` (one run -> outputs),
``__main__`` (CLI + MLflow). Model files import only torch (and components.models).

CLI: ``python -m components.pretrain --params params.yaml --method mae [--set k=v]``.
"""
from components.pretrain import beit, mae, mocov3, random_init, supervised  # noqa: F401  (register)
from components.pretrain.config import PretrainConfig, config_from_params
from components.pretrain.registry import METHODS, MethodSpec, get_method, register_method

__all__ = ["METHODS", "MethodSpec", "PretrainConfig", "config_from_params", "get_method",
           "register_method"]
