"""``supervised``: multi-label image classification from image-level labels (any backbone + BCE).

The paper's supervised baseline is ImageNet-21k/1k classification. We have no ImageNet, so the
supervision is the dataset's own image-level labels: ``openimages/<split>-annotations-human-
imagelabels.csv`` (human-verified positives, ``Confidence`` 1; verified negatives 0), or the
categories present in the COCO annotations when there is no such CSV.

Why multi-label whole-image classification and not object-crop classification: (1) it is the
ImageNet-style recipe the paper compares against (whole images, one global embedding), so the
backbone sees full scenes at the pretraining resolution like every other method here; (2) the
image-level label file exists for every source (OpenImages ships it; for COCO it follows from
the boxes) with no cropping policy to choose; (3) crops of the small synthetic objects (6-45% of
a 256 px side) would be upsampled tens of pixels, teaching the ViT blur rather than shape.
Several objects per image make it multi-label, hence independent sigmoids + binary
cross-entropy rather than a softmax.

Shapes::

    imgs (B, 3, S, S) -> pooled (B, C) -> LayerNorm -> head (B, K)
    targets (B, K) in {0, 1};  loss = BCE-with-logits, mean over B*K

``pooled`` is the backbone family's ``pooled_features`` (the backbone contract): for the ViT
the mean of the output tokens (no cls token, as MAE's fine-tuning ``global_pool``); for a CNN
or MobileViT the last stage map averaged over space, the ImageNet classifier's own pooling
(the MobileViT paper's classification models). So the same method pretrains every family,
e.g. MobileViT for SSDLite. Implementation: our own on the detection backbone itself
(timm's classifiers would need renaming; torch-only).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from components.models.backbones import family_of
from components.pretrain.common import build_backbone, pretraining_config, trunc_normal_init
from components.pretrain.config import PretrainConfig
from components.pretrain.registry import register_method

__all__ = ["SupervisedPretrainer", "build"]


class SupervisedPretrainer(nn.Module):
    """Backbone + its global pooling + linear multi-label head.

    Args:
        backbone: the backbone to pretrain (any registered family).
        num_classes: K (0: set later by :meth:`set_label_space`, which the stage calls with the
            label names it read).
        embed_dim: channels of the family's pooled features (``family.embedding_dim``).
        img_size: square crop side the backbone is pretrained at.
        crop_scale: random-resized-crop scale range (mild: labels must stay in the crop).
        pos_weight: weight of positive targets in the BCE (labels are sparse).
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 0, *, embed_dim: int,
                 img_size: int, crop_scale: tuple[float, float] = (0.5, 1.0),
                 pos_weight: float = 1.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.family = family_of(backbone)
        self.embed_dim, self.img_size = int(embed_dim), int(img_size)
        self.norm = nn.LayerNorm(self.embed_dim, eps=1e-6)
        self.head = nn.Linear(self.embed_dim, max(num_classes, 1))
        self.classes: list[str] = []
        self.crop_scale = tuple(crop_scale)
        self.pos_weight = pos_weight
        trunc_normal_init(self.norm)
        trunc_normal_init(self.head)

    def set_label_space(self, classes: Sequence[str]) -> None:
        """(Re)build the head for ``classes`` (before the optimizer is created)."""
        self.classes = list(classes)
        self.head = nn.Linear(self.embed_dim, len(self.classes))
        trunc_normal_init(self.head)

    def describe(self) -> dict:
        return {"classes": self.classes, "num_classes": len(self.classes)}

    def make_transform(self):
        from components.pretrain.data import basic_transform

        return basic_transform(self.img_size, self.crop_scale)

    def forward_logits(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, K)``."""
        return self.head(self.norm(self.family.pooled_features(self.backbone, imgs)))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.forward_logits(batch["image"]).float()
        targets = batch["targets"].float()
        pw = torch.full_like(targets[0], self.pos_weight)
        loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw)
        acc = ((logits > 0).float() == targets).float().mean()
        return {"loss": loss, "accuracy": acc.detach()}


@register_method("supervised", data="labels", defaults={
    "split": "train", "crop_scale": [0.5, 1.0], "pos_weight": 1.0,
    "epochs": 6, "lr": 1.0e-3,
}, summary="multi-label classification of image-level labels (avg-pool head, BCE)",
    backbones=None)
def build(cfg: PretrainConfig) -> SupervisedPretrainer:
    from components.models.backbones import get_backbone

    args = (cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path, cfg.arch)
    backbone = build_backbone(*args, family=cfg.backbone)
    dim = get_backbone(cfg.backbone).embedding_dim(pretraining_config(*args, family=cfg.backbone))
    return SupervisedPretrainer(backbone, 0, embed_dim=dim, img_size=cfg.img_size,
                                crop_scale=tuple(cfg.opt("crop_scale")),
                                pos_weight=cfg.opt("pos_weight"))
