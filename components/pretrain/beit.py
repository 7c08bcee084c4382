"""``beit``: BERT-style masked image modelling (Bao et al., 2021, arXiv 2106.08254).

A frozen visual tokenizer turns each image into one discrete token per patch. About 40% of the
patches are masked *blockwise*; their embeddings are replaced by a learned mask token; the ViT
sees the whole sequence (masked + visible, with position embeddings) and a linear head predicts
the tokenizer's code at each MASKED position (cross-entropy on masked positions only).

Shapes (``N = (S/p)^2`` patches, ``C`` width, ``V`` codebook size)::

    imgs (B, 3, S, S) -> tokenizer codes (B, N) long        (frozen, no gradient)
    mask (B, N) bool  -> patches (B, N, C), masked ones := mask_token -> + pos_embed
    -> blocks -> LayerNorm -> head -> logits (B, N, V) -> CE over logits[mask] vs codes[mask]

Blockwise masking (BEiT Alg. 1): repeatedly draw a rectangle of ``s`` patches (``s`` uniform in
``[min_block, remaining budget]``, aspect ratio log-uniform in ``[0.3, 1/0.3]``) at a random
place and mask it, until ``round(mask_ratio * N)`` patches are masked (rectangles that add nothing
are retried, at most 10 times per round). ``min_block`` is 16 patches at 14x14 in the paper;
it is scaled to the grid here (``max(2, round(16 * N / 196))``: 5 patches at 8x8).

The tokenizer is NOT DALL-E's dVAE: it is our own VQ-VAE trained by the ``tokenizer`` stage on
the same images (see :mod:`components.pretrain.tokenizer` for the departures) and read from
``pretrain.beit.tokenizer`` (``pretrained/tokenizer/tokenizer.safetensors``).

Implementation choice: our own on :class:`components.models.backbones.vit.ViT` (mmpretrain's BEiT needs
mmcv and a DALL-E/VQKD target generator); departures from the paper: no cls token and absolute
position embeddings only (the PlainViT's; BEiT uses shared relative position bias), no layer
scale.
"""
from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from components.common.env import project_relative
from components.models.backbones.vit import ViT
from components.pretrain.common import build_backbone, embed_patches, run_blocks, trunc_normal_init
from components.pretrain.config import PretrainConfig, resolve_path
from components.pretrain.registry import register_method
from components.pretrain.tokenizer import VQTokenizer, load_tokenizer

__all__ = ["BEiTPretrainer", "block_mask", "beit_loss", "build"]


def block_mask(grid: tuple[int, int], num_masked: int, min_block: int, rng: random.Random,
               max_aspect: float = 1 / 0.3) -> torch.Tensor:
    """Blockwise mask ``(h, w)`` bool with exactly ``num_masked`` True entries (see module doc).

    When the rectangle draws stall (tiny grids), the remaining budget is filled with random
    single patches so every image is masked at the same ratio.
    """
    h, w = grid
    mask = torch.zeros(h, w, dtype=torch.bool)
    log_ratio = (math.log(1 / max_aspect), math.log(max_aspect))
    count, stalls = 0, 0
    while count < num_masked and stalls < 10:
        budget = num_masked - count
        s = rng.uniform(min(min_block, budget), budget)
        aspect = math.exp(rng.uniform(*log_ratio))
        bh = min(h, max(1, round(math.sqrt(s * aspect))))
        bw = min(w, max(1, round(math.sqrt(s / aspect))))
        top, left = rng.randint(0, h - bh), rng.randint(0, w - bw)
        region = mask[top:top + bh, left:left + bw]
        new = int((~region).sum())
        if 0 < new <= budget:
            region.fill_(True)
            count += new
            stalls = 0
        else:
            stalls += 1
    if count < num_masked:  # fill the remainder
        free = (~mask).flatten().nonzero().flatten().tolist()
        for i in rng.sample(free, num_masked - count):
            mask.view(-1)[i] = True
    return mask


def beit_loss(logits: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over masked positions only: logits ``(B, N, V)``, codes ``(B, N)``,
    mask ``(B, N)`` bool. Unmasked positions get no gradient."""
    return F.cross_entropy(logits[mask].float(), codes[mask])


class BEiTPretrainer(nn.Module):
    """Masked image modelling of a frozen tokenizer's codes.

    Args:
        backbone: the ViT to pretrain.
        tokenizer: a trained :class:`VQTokenizer` whose ``downsample`` equals the patch size.
        mask_ratio: fraction of patches masked per image (0.4).
        min_block: smallest rectangle drawn by the blockwise masker (patches); 0 = scaled default.
        crop_scale: random-resized-crop scale range.
        seed: seeds the mask generator.
    """

    def __init__(self, backbone: ViT, tokenizer: VQTokenizer, mask_ratio: float = 0.4,
                 min_block: int = 0, crop_scale: tuple[float, float] = (0.2, 1.0),
                 seed: int = 0) -> None:
        super().__init__()
        if tokenizer.config["downsample"] != backbone.patch_size:
            raise ValueError(f"tokenizer downsamples by {tokenizer.config['downsample']} but the "
                             f"ViT patch is {backbone.patch_size}: retrain the tokenizer stage")
        self.backbone = backbone
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        dim, vocab = backbone.embed_dim, tokenizer.codebook_size
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, vocab)
        trunc_normal_init(self.norm)
        trunc_normal_init(self.head)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.grid = backbone.pretrain_grid
        n = self.grid[0] * self.grid[1]
        self.num_masked = max(1, round(mask_ratio * n))
        self.min_block = min_block or max(2, round(16 * n / 196))
        self.crop_scale = tuple(crop_scale)
        self.rng = random.Random(seed)

    def train(self, mode: bool = True) -> "BEiTPretrainer":
        super().train(mode)
        self.tokenizer.eval()  # frozen: no codebook EMA updates
        return self

    def make_transform(self):
        from components.pretrain.data import basic_transform

        return basic_transform(self.grid[0] * self.backbone.patch_size, self.crop_scale)

    def sample_masks(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(B, N)`` bool, ``num_masked`` True per row."""
        masks = [block_mask(self.grid, self.num_masked, self.min_block, self.rng).flatten()
                 for _ in range(batch)]
        return torch.stack(masks).to(device)

    def forward_logits(self, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """imgs ``(B, 3, S, S)``, mask ``(B, N)`` bool -> logits ``(B, N, V)``."""
        x = embed_patches(self.backbone, imgs)
        w = mask.unsqueeze(-1).to(x.dtype)
        x = x * (1 - w) + self.mask_token.to(x.dtype) * w + self.backbone.pos_embed
        return self.head(self.norm(run_blocks(self.backbone, x)))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        imgs = batch["image"]
        with torch.no_grad(), torch.autocast(imgs.device.type, enabled=False):
            codes = self.tokenizer.encode(imgs.float())
        mask = self.sample_masks(imgs.shape[0], imgs.device)
        logits = self.forward_logits(imgs, mask)
        loss = beit_loss(logits, codes, mask)
        acc = (logits[mask].argmax(-1) == codes[mask]).float().mean()
        return {"loss": loss, "accuracy": acc.detach()}


@register_method("beit", data="unlabeled", requires=("tokenizer",), defaults={
    "tokenizer": "pretrained/tokenizer/tokenizer.safetensors",
    "mask_ratio": 0.4, "min_block": 0, "crop_scale": [0.2, 1.0],
    "epochs": 5, "lr": 1.0e-3,
}, summary="BEiT: blockwise-masked prediction of our own VQ-VAE tokenizer's codes")
def build(cfg: PretrainConfig) -> BEiTPretrainer:
    path = resolve_path(cfg.opt("tokenizer"))
    tokenizer = load_tokenizer(path)
    backbone = build_backbone(cfg.size, cfg.img_size, cfg.patch_size, cfg.drop_path, cfg.arch)
    model = BEiTPretrainer(backbone, tokenizer, cfg.opt("mask_ratio"), cfg.opt("min_block"),
                           tuple(cfg.opt("crop_scale")), cfg.seed)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    model.describe = lambda: {"tokenizer": project_relative(path), "tokenizer_sha256": digest,  # type: ignore
                              "codebook_size": tokenizer.codebook_size}
    return model
