"""``random``: the no-pretraining baseline, a freshly initialised backbone with the run's seed.

The paper's "random init" row (arXiv 2111.11429, Table 1) trains the detector from scratch.
Writing the initial weights as a checkpoint (instead of leaving ``model.checkpoint`` empty)
makes the baseline a versioned artifact like the others: the detector then starts from the
exact same tensors on every run, independent of the order in which mmengine builds modules.

Init scheme: the backbone family's own (the ViT, :class:`components.models.backbones.vit.ViT`:
every Linear and the patch convolution trunc-normal(std 0.02) with zero bias, ``pos_embed``
trunc-normal(0.02), LayerNorm weight 1 / bias 0; a module with mmengine's ``init_weights``,
e.g. ResNet, runs it). No data and no training steps. Works for every registered family.
"""
from __future__ import annotations

import torch
from torch import nn

from components.pretrain.common import build_backbone
from components.pretrain.config import PretrainConfig
from components.pretrain.registry import register_method

__all__ = ["RandomInit", "build"]


class RandomInit(nn.Module):
    """Holds a freshly initialised backbone; the training driver is skipped (``data="none"``)."""

    def __init__(self, cfg: PretrainConfig) -> None:
        super().__init__()
        torch.manual_seed(cfg.seed)
        self.backbone = build_backbone(cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path,
                                       cfg.arch, family=cfg.backbone)
        if hasattr(self.backbone, "init_weights"):
            self.backbone.init_weights()

    def make_transform(self):
        return None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise RuntimeError("the 'random' method has no training step")


@register_method("random", data="none", defaults={}, backbones=None,
                 summary="freshly initialised backbone (its own init scheme), no data")
def build(cfg: PretrainConfig) -> RandomInit:
    return RandomInit(cfg)
