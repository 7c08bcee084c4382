"""``mae``: Masked Autoencoders (He et al., 2021, arXiv 2111.06377) on the PlainViT backbone.

Per image: patchify, keep a random 25% of the patches (per-sample shuffle), run the ENCODER ON
THE VISIBLE PATCHES ONLY (plus their position embeddings), then a lightweight decoder sees the
encoded visible tokens plus a shared learned mask token at every masked position and predicts
the pixels of every patch. The loss is the MSE on MASKED patches only, against per-patch
normalised pixels (each target patch minus its mean, divided by its std).

Shapes (``B`` images, ``N = (S/p)^2`` patches, ``K = N * (1 - mask_ratio)`` kept, ``C`` encoder
width, ``D`` decoder width)::

    imgs (B, 3, S, S) -> patches (B, N, C) -> visible (B, K, C) -> encoder (B, K, C)
    -> decoder_embed (B, K, D) -> + mask tokens, unshuffled (B, N, D) -> pred (B, N, p*p*3)
    mask (B, N): 1 = masked (predicted, in the loss), 0 = visible

Implementation choice: our own ~150 lines on :class:`components.models.backbones.vit.ViT` and its
``Block`` (not mmpretrain's ``MAE`` / ``MAEViT``): the encoder's tensors are the detection
backbone's, saved with no renaming, and the file runs on the torch-only GPU box (mmpretrain
needs mmcv). Departures from the paper: no cls token (the PlainViT has none); the encoder's
position embedding starts as the fixed 2-D sin-cos table and stays frozen during pretraining
(as in MAE) unless ``fixed_pos_embed: false``; the decoder's is fixed sin-cos too. Paper sizes:
ViT-B encoder + 8-block 512-d decoder (:data:`DECODER_PRESETS`); the CPU default is a 2-block
128-d decoder.
"""
from __future__ import annotations

import torch
from torch import nn

from components.models.backbones.vit import Block, ViT
from components.pretrain.common import (
    build_backbone,
    embed_patches,
    patchify,
    run_blocks,
    sincos_pos_embed_2d,
    trunc_normal_init,
)
from components.pretrain.config import PretrainConfig
from components.pretrain.registry import register_method

__all__ = ["MAEPretrainer", "DECODER_PRESETS", "random_masking", "mae_loss", "build"]

# (dim, depth, heads): the paper's decoder at base/large; CPU default is "tiny".
DECODER_PRESETS = {"tiny": (128, 2, 4), "paper": (512, 8, 16)}


def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep ``int(N * (1 - mask_ratio))`` tokens per sample, chosen by sorting random noise.

    x: ``(B, N, C)``; noise: optional ``(B, N)`` (lowest noise is kept). Returns
    ``visible (B, K, C)``, ``mask (B, N)`` (1 = masked) and ``ids_restore (B, N)`` (the inverse
    permutation that puts ``[visible, masked]`` back into patch order).
    """
    b, n, c = x.shape
    keep = int(n * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} leaves no visible patch out of {n}")
    if noise is None:
        noise = torch.rand(b, n, device=x.device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    ids_keep = ids_shuffle[:, :keep]
    visible = x.gather(1, ids_keep.unsqueeze(-1).expand(-1, -1, c))
    mask = torch.ones(b, n, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    mask = mask.gather(1, ids_restore)
    return visible, mask, ids_restore


def mae_loss(imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, patch_size: int,
             norm_pix: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Mean squared error over masked patches only.

    imgs ``(B, 3, S, S)``; pred ``(B, N, p*p*3)``; mask ``(B, N)`` with 1 = masked. With
    ``norm_pix`` each target patch is standardised by its own mean and variance.
    """
    target = patchify(imgs, patch_size).float()
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps).sqrt()
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1)


class MAEPretrainer(nn.Module):
    """Masked autoencoder around a PlainViT encoder.

    Args:
        backbone: the encoder (:func:`components.pretrain.common.build_backbone`).
        mask_ratio: fraction of patches removed per image (0.75).
        decoder_dim / decoder_depth / decoder_heads: the decoder's width, blocks and heads.
        norm_pix_loss: per-patch normalised pixel targets.
        fixed_pos_embed: encoder pos_embed = fixed 2-D sin-cos (frozen here; trainable later).
        crop_scale: random-resized-crop scale range of the data pipeline.
    """

    def __init__(self, backbone: ViT, mask_ratio: float = 0.75, decoder_dim: int = 512,
                 decoder_depth: int = 8, decoder_heads: int = 16, norm_pix_loss: bool = True,
                 fixed_pos_embed: bool = True, crop_scale: tuple[float, float] = (0.2, 1.0)) -> None:
        super().__init__()
        self.backbone = backbone
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.crop_scale = tuple(crop_scale)
        self.patch_size = backbone.patch_size
        self.img_size = backbone.pretrain_grid[0] * backbone.patch_size
        grid, dim = backbone.pretrain_grid[0], backbone.embed_dim
        if fixed_pos_embed:
            backbone.pos_embed.data.copy_(sincos_pos_embed_2d(grid, dim))
            backbone.pos_embed.requires_grad_(False)
        self.norm = nn.LayerNorm(dim, eps=1e-6)  # encoder output norm (pretraining only)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_2d(grid, decoder_dim),
                             persistent=False)
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, window_size=0)
            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_size ** 2 * 3)
        for module in (self.norm, self.decoder_embed, self.decoder_blocks, self.decoder_norm,
                       self.decoder_pred):
            trunc_normal_init(module)
        nn.init.normal_(self.mask_token, std=0.02)

    def make_transform(self):
        from components.pretrain.data import basic_transform

        return basic_transform(self.img_size, self.crop_scale)

    def forward_encoder(self, imgs: torch.Tensor, noise: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """imgs ``(B, 3, S, S)`` -> latent ``(B, K, C)``, mask ``(B, N)``, ids_restore ``(B, N)``.

        The blocks only ever see the ``K`` visible tokens.
        """
        x = embed_patches(self.backbone, imgs) + self.backbone.pos_embed
        visible, mask, ids_restore = random_masking(x, self.mask_ratio, noise)
        return self.norm(run_blocks(self.backbone, visible)), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent ``(B, K, C)`` -> pixel predictions ``(B, N, p*p*3)`` for every patch."""
        x = self.decoder_embed(latent)
        b, k, d = x.shape
        n = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(b, n - k, d)], dim=1)
        x = x.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, d))  # back to patch order
        x = (x + self.decoder_pos_embed).unsqueeze(1)                 # (B, 1, N, D) grid
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x.squeeze(1)))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        imgs = batch["image"]
        latent, mask, ids_restore = self.forward_encoder(imgs)
        pred = self.forward_decoder(latent, ids_restore)
        loss = mae_loss(imgs, pred, mask, self.patch_size, self.norm_pix_loss)
        return {"loss": loss}


@register_method("mae", data="unlabeled", defaults={
    "mask_ratio": 0.75, "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4,
    "norm_pix_loss": True, "fixed_pos_embed": True, "crop_scale": [0.2, 1.0],
    "epochs": 8, "lr": 1.5e-3,
}, summary="masked autoencoder: 75% masking, encoder on visible patches, pixel decoder")
def build(cfg: PretrainConfig) -> MAEPretrainer:
    backbone = build_backbone(cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path, cfg.arch)
    return MAEPretrainer(backbone, cfg.opt("mask_ratio"), cfg.opt("decoder_dim"),
                         cfg.opt("decoder_depth"), cfg.opt("decoder_heads"),
                         cfg.opt("norm_pix_loss"), cfg.opt("fixed_pos_embed"),
                         tuple(cfg.opt("crop_scale")))
