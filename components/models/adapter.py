"""Multi-scale adapter between the plain ViT (all maps at stride 16) and an FPN.

Li et al. (arXiv 2111.11429, Sec. 3) feed FPN from four ViT blocks (d/4, d/2, 3d/4, d),
rescaled to strides 4, 8, 16, 32:

    map0  ConvTranspose2d(2, s2) -> norm -> GELU -> ConvTranspose2d(2, s2)   stride 4
    map1  ConvTranspose2d(2, s2)                                             stride 8
    map2  identity                                                           stride 16
    map3  MaxPool2d(2)                                                       stride 32

``mode`` reproduces the paper's Table-2 ablation: ``'multiscale'`` (the above, default),
``'simple'`` (all four scales built from the LAST block's map, as in ViTDet's simple feature
pyramid), ``'single'`` (only the last block's stride-16 map, one output). All outputs keep
the backbone's channel count ``C``.

Use in mmdet 3.3 as the first of two necks. ``TwoStageDetector`` builds ``neck`` with
``MODELS.build``, whose build function (mmengine's ``build_model_from_cfg``) turns a LIST of
configs into an ``mmengine.model.Sequential``, so no FPN needs to live inside the adapter::

    neck=[dict(type='ViTFPNAdapter', in_channels=C),
          dict(type='FPN', in_channels=[C, C, C, C], out_channels=256, num_outs=5)]

For ``mode='single'`` use ``FPN(in_channels=[C], num_outs=...)`` with anchor/RoI strides
starting at 16.
"""
from __future__ import annotations

import torch
from torch import nn

from components.models.registry import BaseModule, register_model

__all__ = ["ADAPTER_MODES", "LayerNorm2d", "build_norm2d", "ViTFPNAdapter"]

ADAPTER_MODES = ("multiscale", "simple", "single")


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of ``(B, C, H, W)`` (ViTDet's norm in the pyramid)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight,
                                     self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def build_norm2d(cfg: dict | None, channels: int) -> nn.Module:
    """Pure-torch norm from an mmcv-style ``dict(type=...)``: ``LN2d`` (alias ``LN``), ``BN``,
    ``SyncBN``, ``GN`` (``num_groups``, default 32); None = identity. No mmcv needed."""
    if cfg is None:
        return nn.Identity()
    cfg = dict(cfg)
    kind = cfg.pop("type")
    cfg.pop("requires_grad", None)
    if kind in ("LN2d", "LN"):
        return LayerNorm2d(channels, **cfg)
    if kind == "BN":
        return nn.BatchNorm2d(channels, **cfg)
    if kind == "SyncBN":
        return nn.SyncBatchNorm(channels, **cfg)
    if kind == "GN":
        return nn.GroupNorm(cfg.pop("num_groups", 32), channels, **cfg)
    raise ValueError(f"norm_cfg type must be LN2d, BN, SyncBN or GN, got {kind!r}")


@register_model("ViTFPNAdapter")
class ViTFPNAdapter(BaseModule):
    """Rescale stride-16 ViT maps into a stride-4/8/16/32 pyramid (see module docstring).

    Args:
        in_channels: channels C of every backbone map (the ViT's embed dim).
        mode: ``'multiscale' | 'simple' | 'single'``.
        norm_cfg: norm between the two transposed convs of the stride-4 branch.
        init_cfg: mmengine init config (default: torch's default conv init).

    Input: tuple of ``(B, C, h, w)`` maps; ``'multiscale'`` needs exactly four (blocks d/4..d),
    the other modes use only the last one. Output: tuple of ``(B, C, 4h, 4w)``,
    ``(B, C, 2h, 2w)``, ``(B, C, h, w)``, ``(B, C, h/2, w/2)``; or just ``(B, C, h, w)``.
    """

    def __init__(self, in_channels: int, mode: str = "multiscale",
                 norm_cfg: dict | None = None, init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mode not in ADAPTER_MODES:
            raise ValueError(f"ViTFPNAdapter mode must be one of {ADAPTER_MODES}, got {mode!r}")
        c = in_channels
        self.mode = mode
        self.in_channels = c
        norm_cfg = dict(type="LN2d") if norm_cfg is None else norm_cfg
        if mode == "single":
            self.scales = nn.ModuleList([nn.Identity()])
            self.strides: tuple[int, ...] = (16,)
        else:
            self.scales = nn.ModuleList([
                nn.Sequential(nn.ConvTranspose2d(c, c, 2, stride=2), build_norm2d(norm_cfg, c),
                              nn.GELU(), nn.ConvTranspose2d(c, c, 2, stride=2)),
                nn.ConvTranspose2d(c, c, 2, stride=2),
                nn.Identity(),
                nn.MaxPool2d(2),
            ])
            self.strides = (4, 8, 16, 32)
        self.out_channels = [c] * len(self.strides)

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if self.mode == "multiscale":
            if len(inputs) != 4:
                raise ValueError(f"ViTFPNAdapter(mode='multiscale') needs 4 backbone maps "
                                 f"(out_indices = the quarter ends), got {len(inputs)}")
            feats = inputs
        else:
            feats = (inputs[-1],) * len(self.scales)
        return tuple(scale(f) for scale, f in zip(self.scales, feats))
