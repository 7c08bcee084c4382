"""``mocov3``: MoCo v3 (Chen, Xie, He, 2021, arXiv 2104.02057) on the PlainViT backbone.

Two augmented views of each image go through the *base* encoder (backbone -> mean-pooled,
layer-normed tokens -> 3-layer projection MLP -> 2-layer prediction MLP) and through a
*momentum* encoder (a copy of backbone + norm + projector, no predictor, no gradients, updated
as ``theta_k <- m * theta_k + (1 - m) * theta_q`` after each step, ``m`` following a half-cosine
from ``momentum`` (0.99) to 1). The loss is symmetric InfoNCE: each query must pick the key
of the same image among the batch's keys, ``ctr(q1, k2) + ctr(q2, k1)`` with
``ctr(q, k) = 2 * tau * CE(q k^T / tau, arange(B))`` on L2-normalised vectors, ``tau = 0.2``.

Shapes::

    view1, view2 (B, 3, S, S) -> tokens (B, N, C) -> pooled (B, C) -> proj (B, P) -> pred (B, P)
    logits (B, B): row i = query i against every key; target = diagonal

Projection MLP: ``Linear-BN-ReLU-Linear-BN-ReLU-Linear-BN(no affine)``; prediction MLP:
``Linear-BN-ReLU-Linear``; hidden width ``mlp_dim`` (4096 in the paper, 512 on CPU), output
``proj_dim`` (256). Augmentations (BYOL recipe, as MoCo v3): random resized crop (scale
``crop_min``..1), colour jitter (0.4, 0.4, 0.2, 0.1, p 0.8), grayscale (p 0.2), Gaussian blur
(p 1.0 / 0.1), solarize (p 0 / 0.2), horizontal flip. The ViT stabilisers the paper uses are on by
default: frozen random patch projection (``freeze_patch_embed``) and fixed 2-D sin-cos position
embedding (``fixed_pos_embed``).

Implementation choice: our own on :class:`components.models.backbones.vit.ViT` (mmpretrain 1.2.0's MoCoV3
needs mmcv and names its ViT differently; the backbone here is saved with the detection
backbone's names). Departure: no cls token (PlainViT has none), so the image embedding is the
mean of the output tokens after a LayerNorm.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from components.models.backbones.vit import ViT
from components.pretrain.common import (
    build_backbone,
    embed_patches,
    run_blocks,
    sincos_pos_embed_2d,
    trunc_normal_init,
)
from components.pretrain.config import PretrainConfig
from components.pretrain.registry import register_method

__all__ = ["MoCoV3Pretrainer", "build_mlp", "contrastive_loss", "momentum_at", "two_view_transform",
           "build"]


def build_mlp(num_layers: int, in_dim: int, hidden: int, out_dim: int, last_bn: bool) -> nn.Sequential:
    """``num_layers`` Linear layers (no bias), BN + ReLU between them; optional affine-free BN."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        d_in = in_dim if i == 0 else hidden
        last = i == num_layers - 1
        d_out = out_dim if last else hidden
        layers.append(nn.Linear(d_in, d_out, bias=False))
        if not last:
            layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*layers)


def contrastive_loss(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of queries ``(B, P)`` against keys ``(B, P)``; positives on the diagonal.

    Scaled by ``2 * temperature`` as in MoCo v3 (keeps the gradient scale independent of tau).
    """
    q, k = F.normalize(q.float(), dim=1), F.normalize(k.float(), dim=1)
    logits = q @ k.t() / temperature
    labels = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits, labels) * (2 * temperature)


def momentum_at(step: int, total: int, base: float) -> float:
    """Half-cosine from ``base`` at step 0 to 1 at ``total``."""
    return 1.0 - (1.0 - base) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


class _Encoder(nn.Module):
    """backbone -> mean of LayerNorm'd output tokens -> projection MLP: ``(B,3,S,S) -> (B, P)``."""

    def __init__(self, backbone: ViT, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.norm = nn.LayerNorm(backbone.embed_dim, eps=1e-6)
        self.projector = projector

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        x = embed_patches(self.backbone, imgs) + self.backbone.pos_embed
        x = self.norm(run_blocks(self.backbone, x)).mean(dim=1)
        return self.projector(x)


class MoCoV3Pretrainer(nn.Module):
    """MoCo v3 with a momentum encoder.

    Args:
        backbone: the ViT to pretrain (becomes ``base.backbone``; saved as the result).
        proj_dim / mlp_dim: output and hidden widths of the MLPs.
        temperature: InfoNCE temperature tau.
        momentum: starting EMA coefficient m (cosine-increased to 1).
        freeze_patch_embed / fixed_pos_embed: the ViT stabilisers (see module docstring).
        img_size / crop_min: data pipeline.
    """

    def __init__(self, backbone: ViT, proj_dim: int = 256, mlp_dim: int = 4096,
                 temperature: float = 0.2, momentum: float = 0.99,
                 freeze_patch_embed: bool = True, fixed_pos_embed: bool = True,
                 crop_min: float = 0.08) -> None:
        super().__init__()
        dim = backbone.embed_dim
        if fixed_pos_embed:
            backbone.pos_embed.data.copy_(sincos_pos_embed_2d(backbone.pretrain_grid[0], dim))
            backbone.pos_embed.requires_grad_(False)
        if freeze_patch_embed:
            backbone.patch_embed.requires_grad_(False)
        self.base = _Encoder(backbone, build_mlp(3, dim, mlp_dim, proj_dim, last_bn=True))
        self.predictor = build_mlp(2, proj_dim, mlp_dim, proj_dim, last_bn=False)
        trunc_normal_init(self.base.norm)
        trunc_normal_init(self.base.projector)
        trunc_normal_init(self.predictor)
        self.momentum_encoder = copy.deepcopy(self.base)
        self.momentum_encoder.requires_grad_(False)
        self.temperature = temperature
        self.base_momentum = momentum
        self.momentum = momentum
        self.img_size = backbone.pretrain_grid[0] * backbone.patch_size
        self.crop_min = crop_min

    @property
    def backbone(self) -> ViT:
        return self.base.backbone

    def make_transform(self):
        return two_view_transform(self.img_size, self.crop_min)

    @torch.no_grad()
    def momentum_update(self, m: float) -> None:
        """``theta_k <- m * theta_k + (1 - m) * theta_q`` for every parameter pair."""
        for p_q, p_k in zip(self.base.parameters(), self.momentum_encoder.parameters()):
            p_k.mul_(m).add_(p_q.detach(), alpha=1.0 - m)

    def after_step(self, step: int, total: int) -> None:
        self.momentum = momentum_at(step, total, self.base_momentum)
        self.momentum_update(self.momentum)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x1, x2 = batch["view1"], batch["view2"]
        q1, q2 = self.predictor(self.base(x1)), self.predictor(self.base(x2))
        with torch.no_grad():
            k1, k2 = self.momentum_encoder(x1), self.momentum_encoder(x2)
        loss = contrastive_loss(q1, k2, self.temperature) + contrastive_loss(q2, k1, self.temperature)
        return {"loss": loss, "momentum": torch.tensor(self.momentum)}


def two_view_transform(img_size: int, crop_min: float = 0.08):
    """PIL image -> ``{"view1", "view2"}`` normalised ``(3, S, S)`` tensors (asymmetric BYOL augs)."""
    from torchvision import transforms as T

    from components.pretrain.data import normalize

    kernel = 2 * max(1, img_size // 20) + 1  # ~10% of the side, odd (23 px at 224)

    def view(blur_p: float, solarize_p: float):
        return T.Compose([
            T.RandomResizedCrop(img_size, scale=(crop_min, 1.0),
                                interpolation=T.InterpolationMode.BICUBIC),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p),
            T.RandomSolarize(threshold=128, p=solarize_p),
            T.RandomHorizontalFlip(),
            normalize(),
        ])

    v1, v2 = view(1.0, 0.0), view(0.1, 0.2)
    return lambda img: {"view1": v1(img), "view2": v2(img)}


@register_method("mocov3", data="unlabeled", inputs=("view1", "view2"), defaults={
    "proj_dim": 256, "mlp_dim": 512, "temperature": 0.2, "momentum": 0.99,
    "freeze_patch_embed": True, "fixed_pos_embed": True, "crop_min": 0.08,
    "epochs": 3, "lr": 5.0e-4, "weight_decay": 0.1,
}, summary="MoCo v3: momentum encoder, symmetric InfoNCE (tau 0.2), two augmented views")
def build(cfg: PretrainConfig) -> MoCoV3Pretrainer:
    backbone = build_backbone(cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path, cfg.arch)
    return MoCoV3Pretrainer(backbone, cfg.opt("proj_dim"), cfg.opt("mlp_dim"),
                            cfg.opt("temperature"), cfg.opt("momentum"),
                            cfg.opt("freeze_patch_embed"), cfg.opt("fixed_pos_embed"),
                            cfg.opt("crop_min"))
