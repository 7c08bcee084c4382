"""Pieces every pretraining method shares: the backbone, patch (un)folding, token sequences.

Why the detection backbone itself (built through the backbone contract, not timm or
mmpretrain): the pretrained tensors then carry the detector's exact names and shapes (for the
ViT ``blocks.i.*``, ``patch_embed.proj.*``, ``pos_embed`` at the pretraining grid), so
``backbone.safetensors`` loads 1:1 with zero missing keys, and the GPU benchmark box (torch +
timm only, no mmcv) can run every ViT model here. The family's ``pretraining_config`` sets it
up for pretraining: the ViT attends globally in every block (at the pretraining size a window
equals the whole grid, so this is the same function the windowed detection backbone computes
there, and the parameters are identical for ``attention='global' | 'hybrid' | 'windowed'``).

Pure PyTorch: importable with only torch installed (the ViT family).
"""
from __future__ import annotations

import torch
from torch import nn

from components.models.backbones import get_backbone
from components.models.backbones.vit import ViT

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "build_backbone", "pretraining_config", "patchify",
           "unpatchify", "embed_patches", "run_blocks", "sincos_pos_embed_2d", "trunc_normal_init"]

# Same normalisation as the detector's data preprocessor (RGB, ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_backbone(size: str, img_size: int, patch_size: int = 16, drop_path: float = 0.0,
                   arch: dict | None = None, *, family: str = "vit") -> nn.Module:
    """The ``family`` backbone as its contract sets it up for pretraining at ``img_size``
    (the ViT: global attention, pos_embed at ``img_size / patch_size``).

    ``arch`` may override constructor arguments (ViT: ``embed_dim``, ``depth``, ``num_heads``,
    ``mlp_ratio``; tiny tests). The random initialisation is the backbone's own documented
    scheme (the ViT's trunc-normal 0.02).
    """
    return get_backbone(family).build(
        pretraining_config(size, img_size, patch_size, drop_path, arch, family=family))


def pretraining_config(size: str, img_size: int, patch_size: int = 16, drop_path: float = 0.0,
                       arch: dict | None = None, *, family: str = "vit") -> dict:
    """The backbone config :func:`build_backbone` builds (for ``family.embedding_dim`` etc.)."""
    model = {"backbone": family, "size": size, "patch_size": patch_size,
             "pretrain_img_size": img_size, "drop_path": drop_path, "arch": dict(arch or {})}
    return get_backbone(family).pretraining_config(model)


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, N, p*p*C)``, patches in row-major order, pixels ``(p, p, C)``."""
    b, c, h, w = imgs.shape
    gh, gw = h // p, w // p
    x = imgs.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, gh * gw, p * p * c)


def unpatchify(x: torch.Tensor, p: int, grid: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, p*p*C)`` -> ``(B, C, gh*p, gw*p)``."""
    b = x.shape[0]
    gh, gw = grid
    x = x.reshape(b, gh, gw, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, gh * p, gw * p)


def embed_patches(vit: ViT, imgs: torch.Tensor) -> torch.Tensor:
    """Patch embedding WITHOUT position embedding: ``(B, 3, H, W)`` -> ``(B, N, C)``."""
    return vit.patch_embed.proj(imgs).flatten(2).transpose(1, 2)


def run_blocks(vit: ViT, tokens: torch.Tensor) -> torch.Tensor:
    """Run the backbone's blocks on a token *sequence* ``(B, N, C)`` -> ``(B, N, C)``.

    The blocks take a ``(B, h, w, C)`` grid; a sequence is the grid ``(B, 1, N, C)``. That is
    only valid for global attention, which :func:`build_backbone` guarantees.
    """
    if any(blk.window_size > 0 for blk in vit.blocks):
        raise ValueError("run_blocks needs global attention in every block "
                         "(build the backbone with build_backbone / attention='global')")
    x = tokens.unsqueeze(1)
    for blk in vit.blocks:
        x = blk(x)
    return x.squeeze(1)


def sincos_pos_embed_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding ``(1, grid*grid, dim)`` (MAE / MoCo v3).

    Half the channels encode the row, half the column; each half is ``[sin(pos*w), cos(pos*w)]``
    over ``dim/4`` frequencies ``w_k = 10000^(-k/(dim/4))``.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim % 4 == 0, got {dim}")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                            torch.arange(grid, dtype=torch.float64), indexing="ij")

    def enc(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    emb = torch.cat([enc(ys), enc(xs)], dim=1)  # (grid*grid, dim)
    return emb.float().unsqueeze(0)


def trunc_normal_init(module: nn.Module, std: float = 0.02) -> None:
    """The backbone's init scheme for heads/decoders: Linear trunc-normal(std), LayerNorm 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
