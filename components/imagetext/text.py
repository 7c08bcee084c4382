"""The text tower: a small pre-LN transformer encoder over caption tokens.

Why this shape: Florence's text encoder is a 12-layer transformer (CLIP's); our captions are
short templated sentences over ~100 words, so 3 layers of width 128 (4 heads) carry them in a
CPU budget. Attention is bidirectional with a key-padding mask (no causal mask: nothing here is
generated), so a padded position never changes a real token's output, and the sentence
embedding is the masked **mean** of the final tokens (``pool="mean"``) or the ``[EOS]`` token
(``pool="eos"``, CLIP's choice). Mean pooling is the default: it is close to a bag of words, so
"red star" embeds near "red" + "star", which is what zero-shot on held-out colour-shape
compositions needs.

Shapes::

    ids (B, L) int64, mask (B, L) bool -> tokens (B, L, W) -> pooled (B, W)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TextConfig", "TextEncoder"]

POOLS = ("mean", "eos")


@dataclass(frozen=True)
class TextConfig:
    """Text tower hyperparameters (``pretrain.unicl.text_*`` in params.yaml)."""

    vocab_size: int
    width: int = 128
    depth: int = 3
    heads: int = 4
    max_len: int = 64
    mlp_ratio: float = 4.0
    pool: str = "mean"

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"text width {self.width} must be a multiple of heads {self.heads}")
        if self.pool not in POOLS:
            raise ValueError(f"text pool must be one of {POOLS}, got {self.pool!r}")

    def as_dict(self) -> dict:
        return asdict(self)


class _Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))``, ``x + mlp(ln(x))`` on ``(B, L, W)``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4)
        # mask (B, L) True = real token -> (B, 1, 1, L): every query attends to real keys only
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Token + learned position embedding -> LayerNorm -> ``depth`` blocks -> LayerNorm -> pooled
    ``(B, W)``.

    The embedding LayerNorm (BERT's) puts the residual stream at unit scale, so at init each
    token's identity dominates what the blocks add. Without it (0.02-scale embeddings, GPT/CLIP
    style) the blocks' near-uniform attention averages every caption towards the same vector:
    measured here, all captions started at cosine 0.98 to each other, and UniCL on the built-in
    captions sat at the uniform loss log(B) for 300 steps.

    Args:
        cfg: the :class:`TextConfig`.
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.max_len, cfg.width))
        self.embed_norm = nn.LayerNorm(cfg.width)
        self.blocks = nn.ModuleList(_Block(cfg.width, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def width(self) -> int:
        return self.cfg.width

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids, mask (B, L)`` (``L <= max_len``, right-padded, every row with >= 1 real token)
        -> ``(B, W)``. Columns that are padding in every row are cut first (saves the compute
        of fixed-length batches; the result is the same)."""
        mask = mask.bool()
        n = max(1, int(mask.sum(dim=1).max()))   # drop all-padding columns (exact: masked anyway)
        ids, mask = ids[:, :n], mask[:, :n]
        x = self.embed_norm(self.token_embed(ids) + self.pos_embed[:, :ids.shape[1]])
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.norm(x)
        if self.cfg.pool == "eos":  # the last real token ([EOS] after truncation too)
            last = mask.long().sum(dim=1).clamp_min(1) - 1
            return x[torch.arange(len(x), device=x.device), last]
        w = mask.unsqueeze(-1).to(x.dtype)
        return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
