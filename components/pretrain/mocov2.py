"""``mocov2``: MoCo v2 (Chen, Fan, Girshick, He, 2020, arXiv 2003.04297) with object-aware crops.

A query encoder (backbone -> global pool -> 2-layer MLP head, 128-d) and a momentum key
encoder (its EMA copy, ``m`` fixed, 0.999 in the paper) embed the two views of each image;
each query must pick its own key among the batch's key and a queue of ``queue_size`` keys of
earlier batches (InfoNCE, temperature 0.2)::

    view1 -> q (B, P);  view2 -> k (B, P) (no grad)
    logits = [q.k_pos, q.queue^T] / tau  (B, 1 + K);  loss = CE(logits, 0)

With ``symmetric: true`` both view orders are used (``loss = (l(v1,v2) + l(v2,v1)) / 2``,
twice the signal per image for short CPU schedules); the paper's MoCo v2 is asymmetric.
The crops are the object-aware cropping paper's policies (``crops``: :mod:`.crops`): the
paper's main setting is MoCo-v2 + ResNet-50 with ``obj_obj_dilate`` on BING proposals.

Departures, for the CPU default: AdamW with warmup + cosine (the shared engine) instead of SGD
lr 0.03; a 1024-key queue (paper 65,536; our train split has 2,000 images); ``m = 0.99``
(a few hundred steps instead of 200 epochs); no shuffled BN (one process).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.pretrain.common import build_backbone, pretraining_config, trunc_normal_init
from components.pretrain.config import PretrainConfig
from components.pretrain.registry import register_method
from components.pretrain.twoview import (CROP_DEFAULTS, PooledEncoder, ema_update, momentum_copy,
                                         object_aware_dataset, view_transform)

__all__ = ["MoCoV2Pretrainer", "build", "moco_logits"]


def moco_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """``(B, 1 + K)`` logits: column 0 the positive key, then the queue (all L2-normalised)."""
    q, k = F.normalize(q.float(), dim=1), F.normalize(k.float(), dim=1)
    pos = (q * k).sum(dim=1, keepdim=True)
    neg = q @ queue.t()
    return torch.cat([pos, neg], dim=1) / temperature


class MoCoV2Pretrainer(nn.Module):
    """MoCo v2: query encoder, momentum key encoder, key queue.

    Args:
        backbone: the backbone to pretrain (any family; saved as the result).
        embed_dim: its pooled feature width (``family.embedding_dim``).
        proj_dim / mlp_dim: MLP head output / hidden widths (128 / 2048 in the paper).
        queue_size / temperature / momentum: see the module docstring.
    """

    def __init__(self, backbone: nn.Module, embed_dim: int, *, proj_dim: int = 128,
                 mlp_dim: int = 2048, queue_size: int = 1024, temperature: float = 0.2,
                 momentum: float = 0.99, symmetric: bool = False, img_size: int = 128,
                 options: dict | None = None) -> None:
        super().__init__()
        head = nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.ReLU(inplace=True),
                             nn.Linear(mlp_dim, proj_dim))
        trunc_normal_init(head)
        self.query = PooledEncoder(backbone, head)
        self.key = momentum_copy(self.query)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.temperature, self.momentum, self.symmetric = temperature, momentum, symmetric
        self.img_size = img_size
        self.options = dict(options or {})

    @property
    def backbone(self) -> nn.Module:
        return self.query.backbone

    def make_dataset(self, cfg: PretrainConfig):
        views = (view_transform(blur_p=0.5, solarize_p=0.0, img_size=self.img_size),) * 2
        return object_aware_dataset(cfg, views)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = F.normalize(keys.float(), dim=1)
        n, size = keys.shape[0], self.queue.shape[0]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % size
        self.queue[idx] = keys[-size:] if n > size else keys
        self.queue_ptr.fill_((ptr + n) % size)

    def _loss(self, xq: torch.Tensor, xk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q = self.query(xq)
        with torch.no_grad():
            k = self.key(xk)
        logits = moco_logits(q, k, self.queue.clone().detach(), self.temperature)
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target), (logits.argmax(1) == 0).float().mean(), k

    def after_step(self, step: int, total: int) -> None:
        ema_update(self.query, self.key, self.momentum)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x1, x2 = batch["view1"], batch["view2"]
        loss, acc, k2 = self._loss(x1, x2)
        keys = [k2]
        if self.symmetric:
            loss_b, acc_b, k1 = self._loss(x2, x1)
            loss, acc = (loss + loss_b) / 2, (acc + acc_b) / 2
            keys.append(k1)
        for k in keys:
            self._enqueue(k)
        return {"loss": loss, "instance_acc": acc.detach()}


def _backbone(cfg: PretrainConfig) -> tuple[nn.Module, int]:
    from components.models.backbones import get_backbone

    args = (cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path, cfg.arch)
    dim = get_backbone(cfg.backbone).embedding_dim(pretraining_config(*args, family=cfg.backbone))
    return build_backbone(*args, family=cfg.backbone), dim


# The two-view methods' shared options (split, box source, crop policy knobs).
TWO_VIEW_DEFAULTS = {"split": "train", "proposals": "data/proposals", "crops": dict(CROP_DEFAULTS)}


@register_method("mocov2", data="custom", inputs=("view1", "view2"), backbones=None, defaults={
    **TWO_VIEW_DEFAULTS, "proj_dim": 128, "mlp_dim": 2048, "queue_size": 1024,
    "temperature": 0.2, "momentum": 0.99, "symmetric": True,
    "epochs": 4, "lr": 1.0e-3, "weight_decay": 1.0e-4,
}, summary="MoCo v2: momentum key encoder + key queue, InfoNCE; object-aware crop policies")
def build(cfg: PretrainConfig) -> MoCoV2Pretrainer:
    backbone, dim = _backbone(cfg)
    return MoCoV2Pretrainer(backbone, dim, proj_dim=cfg.opt("proj_dim"), mlp_dim=cfg.opt("mlp_dim"),
                            queue_size=cfg.opt("queue_size"), temperature=cfg.opt("temperature"),
                            momentum=cfg.opt("momentum"), symmetric=cfg.opt("symmetric"),
                            img_size=cfg.img_size, options=cfg.options)
