"""``byol``: BYOL (Grill et al., 2020, arXiv 2006.07733) with object-aware crops.

An online network (backbone -> global pool -> projector MLP -> predictor MLP) predicts the
projection of the *other* view made by a target network (EMA copy of backbone + projector, no
predictor, no gradients; ``tau`` cosine-increased from ``momentum`` (0.996) to 1). No negatives::

    p1 = pred(proj(f(v1)));  z2 = proj_t(f_t(v2))   (and the swap)
    loss = (2 - 2 cos(p1, z2)) + (2 - 2 cos(p2, z1))

MLPs: ``Linear-BN-ReLU-Linear`` with hidden ``mlp_dim`` (4096 in the paper; 1024 on CPU),
output ``proj_dim`` 256. Views: BYOL's asymmetric augmentations (blur 1.0 / 0.1, solarize 0 /
0.2) after the crop policy's regions (:mod:`.crops`). Departure: AdamW + warmup + cosine (the
shared engine) instead of LARS.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.pretrain.common import trunc_normal_init
from components.pretrain.config import PretrainConfig
from components.pretrain.mocov2 import TWO_VIEW_DEFAULTS, _backbone
from components.pretrain.mocov3 import build_mlp, momentum_at
from components.pretrain.registry import register_method
from components.pretrain.twoview import (PooledEncoder, ema_update, momentum_copy,
                                         object_aware_dataset, view_transform)

__all__ = ["BYOLPretrainer", "byol_loss", "build"]


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2 cos(p, z)`` over the batch (``z`` is a target: no gradient)."""
    return (2 - 2 * F.cosine_similarity(p.float(), z.detach().float(), dim=1)).mean()


class BYOLPretrainer(nn.Module):
    """BYOL: online encoder + predictor, EMA target encoder."""

    def __init__(self, backbone: nn.Module, embed_dim: int, *, proj_dim: int = 256,
                 mlp_dim: int = 4096, momentum: float = 0.996, img_size: int = 128) -> None:
        super().__init__()
        self.online = PooledEncoder(backbone, build_mlp(2, embed_dim, mlp_dim, proj_dim,
                                                        last_bn=False))
        self.predictor = build_mlp(2, proj_dim, mlp_dim, proj_dim, last_bn=False)
        trunc_normal_init(self.online.head)
        trunc_normal_init(self.predictor)
        self.target = momentum_copy(self.online)
        self.base_momentum = self.momentum = momentum
        self.img_size = img_size

    @property
    def backbone(self) -> nn.Module:
        return self.online.backbone

    def make_dataset(self, cfg: PretrainConfig):
        views = (view_transform(blur_p=1.0, solarize_p=0.0, img_size=self.img_size,
                                jitter=(0.4, 0.4, 0.2, 0.1)),
                 view_transform(blur_p=0.1, solarize_p=0.2, img_size=self.img_size,
                                jitter=(0.4, 0.4, 0.2, 0.1)))
        return object_aware_dataset(cfg, views)

    def after_step(self, step: int, total: int) -> None:
        self.momentum = momentum_at(step, total, self.base_momentum)
        ema_update(self.online, self.target, self.momentum)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x1, x2 = batch["view1"], batch["view2"]
        p1, p2 = self.predictor(self.online(x1)), self.predictor(self.online(x2))
        with torch.no_grad():
            z1, z2 = self.target(x1), self.target(x2)
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return {"loss": loss, "momentum": torch.tensor(self.momentum)}


@register_method("byol", data="custom", inputs=("view1", "view2"), backbones=None, defaults={
    **TWO_VIEW_DEFAULTS, "proj_dim": 256, "mlp_dim": 1024, "momentum": 0.99,
    "epochs": 4, "lr": 1.0e-3, "weight_decay": 1.0e-4,
}, summary="BYOL: online predictor vs EMA target, no negatives; object-aware crop policies")
def build(cfg: PretrainConfig) -> BYOLPretrainer:
    backbone, dim = _backbone(cfg)
    return BYOLPretrainer(backbone, dim, proj_dim=cfg.opt("proj_dim"), mlp_dim=cfg.opt("mlp_dim"),
                          momentum=cfg.opt("momentum"), img_size=cfg.img_size)
