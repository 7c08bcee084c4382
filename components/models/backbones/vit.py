"""Plain, non-hierarchical ViT backbone for detection transfer.

Follows "Benchmarking Detection Transfer Learning with Vision Transformers" (Li et al., 2021,
arXiv 2111.11429) and, for the optional decomposed relative position bias, ViTDet (Li et al.,
2022, arXiv 2203.16527). Everything the forward pass needs is in this file, top to bottom:

0. the variants as data (:data:`SIZES`: ViT-Ti/S/B/L) and the closed-form parameter count;
1. helpers: block placement (:func:`quarter_indices`, :func:`global_block_indices`), stochastic
   depth (:class:`DropPath`), window (un)partition with padding, position-embedding resize,
   decomposed relative position bias;
2. :class:`PatchEmbed`, :class:`Attention` (fused ``scaled_dot_product_attention`` or the
   explicit ``naive`` form), :class:`Mlp`, :class:`Block` (pre-norm; windowed or global);
3. :class:`ViT` (registered in mmdet's ``MODELS`` as ``'PlainViT'``);
4. :class:`ViTFamily`, the backbone contract (:mod:`components.models.backbones.base`)
   registered as ``vit``: params -> config, output shapes, the adapter into FPN, and how
   checkpoints from other codebases are fitted (mmpretrain names, cls tokens, resized
   position embeddings and relative-position tables).

Shapes: the image is ``(B, 3, H, W)``; tokens travel channels-last as ``(B, h, w, C)`` with
``h = H / 16``; the outputs are a tuple of ``(B, C, h, w)`` maps, all at stride 16.

Why windows: the paper keeps the pretrained ViT unchanged except that most blocks attend
inside non-overlapping windows the size of the pretraining grid (14x14 for 224 px / 16), and
one block at the end of each quarter of the network attends globally (blocks d/4, d/2, 3d/4,
d: indices 2, 5, 8, 11 for depth 12). Attention cost is then linear in image area except for
the four global blocks.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from components.models.adapter import ADAPTER_MODES
from components.models.backbones.base import BACKBONES, BackboneFamily, FeatureShape
from components.models.registry import BaseModule, get_logger, register_model
from components.models.weights import shape_error

__all__ = [
    "ViTSize",
    "SIZES",
    "get_size",
    "encoder_param_count",
    "ViTFamily",
    "ATTENTION_MODES",
    "ATTN_IMPLS",
    "ViT",
    "PatchEmbed",
    "Block",
    "Attention",
    "quarter_indices",
    "global_block_indices",
    "window_partition",
    "window_unpartition",
    "resize_pos_embed",
    "layer_id",
]

ATTENTION_MODES = ("hybrid", "windowed", "global")
ATTN_IMPLS = ("fused", "naive")


# --------------------------------------------------------------------------- variants
# Why data: the backbone, the benchmarks and the tests all sweep the same table; adding a size
# is adding one row. ``encoder_param_count`` is the closed form of the backbone's parameter
# count, so size claims ("ViT-B is ~86M") are checked without building the model.
@dataclass(frozen=True)
class ViTSize:
    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int = 16
    mlp_ratio: float = 4.0


SIZES: dict[str, ViTSize] = {
    "tiny": ViTSize(embed_dim=192, depth=12, num_heads=3),
    "small": ViTSize(embed_dim=384, depth=12, num_heads=6),
    "base": ViTSize(embed_dim=768, depth=12, num_heads=12),  # ~86M (ViT-B/16 encoder)
    "large": ViTSize(embed_dim=1024, depth=24, num_heads=16),  # ~304M (ViT-L/16 encoder)
}


def get_size(name: str) -> ViTSize:
    """Look a size up by name (``tiny | small | base | large``)."""
    try:
        return SIZES[name]
    except KeyError:
        raise KeyError(f"unknown ViT size {name!r}; known: {sorted(SIZES)} "
                       "(components/models/backbones/vit.py)") from None


def encoder_param_count(size: ViTSize | str, pretrain_img_size: int = 224, in_channels: int = 3,
                        layer_scale: bool = False) -> int:
    """Parameters of :class:`components.models.backbones.vit.ViT` with rel-pos off, counted in closed form.

    patch conv ``C*in*p*p + C`` + pos_embed ``(S/p)^2 * C`` + depth x (qkv ``3C^2+3C``, proj
    ``C^2+C``, fc1 ``hC+h``, fc2 ``hC+C``, two LayerNorms ``4C``, layer scale ``2C`` if on).
    """
    s = get_size(size) if isinstance(size, str) else size
    c, p = s.embed_dim, s.patch_size
    hidden = int(c * s.mlp_ratio)
    patch = c * in_channels * p * p + c
    pos = (pretrain_img_size // p) ** 2 * c
    block = (3 * c * c + 3 * c) + (c * c + c) + (hidden * c + hidden) + (hidden * c + c) + 4 * c
    block += 2 * c if layer_scale else 0
    return patch + pos + s.depth * block


# --------------------------------------------------------------------------- helpers
def quarter_indices(depth: int) -> tuple[int, ...]:
    """Last block of each quarter: ``(d/4-1, d/2-1, 3d/4-1, d-1)``; (2, 5, 8, 11) for d=12."""
    if depth < 4:
        raise ValueError(f"depth must be >= 4 to split into quarters, got {depth}")
    return tuple((q + 1) * depth // 4 - 1 for q in range(4))


def global_block_indices(depth: int, attention: str = "hybrid",
                         global_blocks: Iterable[int] | None = None) -> tuple[int, ...]:
    """Which blocks attend globally; all others use windows.

    ``global_blocks`` (explicit indices) wins over ``attention``; ``'hybrid'`` = the quarter
    ends, ``'windowed'`` = none, ``'global'`` = all.
    """
    if global_blocks is not None:
        idx = tuple(sorted({int(i) for i in global_blocks}))
        bad = [i for i in idx if not 0 <= i < depth]
        if bad:
            raise ValueError(f"global_blocks {bad} outside 0..{depth - 1}")
        return idx
    if attention == "hybrid":
        return quarter_indices(depth)
    if attention == "windowed":
        return ()
    if attention == "global":
        return tuple(range(depth))
    raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")


def layer_id(param_name: str, depth: int) -> int:
    """Layer index for layer-wise lr decay: patch/pos embedding 0, ``blocks.i`` i+1, rest depth+1.

    Works on names with a prefix too (``backbone.blocks.3.attn.qkv.weight`` -> 4), so an
    optimizer constructor can call it on the detector's full parameter names.
    """
    parts = param_name.split(".")
    if "blocks" in parts:
        pos = parts.index("blocks")
        if pos + 1 < len(parts) and parts[pos + 1].isdigit():
            return int(parts[pos + 1]) + 1
    if "patch_embed" in parts or "pos_embed" in parts:
        return 0
    return depth + 1


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (train only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


def window_partition(x: torch.Tensor, window: tuple[int, int]
                     ) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(B, H, W, C)`` -> ``(B * nWindows, wh, ww, C)``, zero-padding H, W up to the window.

    Returns the windows and the padded size ``(Hp, Wp)`` needed by :func:`window_unpartition`.
    """
    b, h, w, c = x.shape
    wh, ww = window
    pad_h, pad_w = (-h) % wh, (-w) % ww
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh, ww, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window: tuple[int, int], padded: tuple[int, int],
                       size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh, ww, C)`` -> ``(B, H, W, C)``."""
    (wh, ww), (hp, wp), (h, w) = window, padded, size
    c = windows.shape[-1]
    b = windows.shape[0] // ((hp // wh) * (wp // ww))
    x = windows.view(b, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, c)
    return x[:, :h, :w, :].contiguous() if (hp, wp) != (h, w) else x


def resize_pos_embed(pos_embed: torch.Tensor, src_grid: tuple[int, int],
                     dst_grid: tuple[int, int]) -> torch.Tensor:
    """``(1, gh*gw, C)`` learned at ``src_grid`` -> ``(1, h, w, C)`` at ``dst_grid`` (bicubic).

    Interpolates in float32 (bicubic has no half-precision CPU kernel) and returns the input dtype.
    """
    c = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, src_grid[0], src_grid[1], c)
    if tuple(dst_grid) == tuple(src_grid):
        return grid
    grid = grid.permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(dst_grid), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).to(pos_embed.dtype)


def _rel_pos_table(size: int, table: torch.Tensor) -> torch.Tensor:
    """Per-axis table ``(L, head_dim)`` -> per-pair embeddings ``(size, size, head_dim)``.

    Entry ``[i, j]`` is the embedding of the offset ``i - j``; the table is linearly resized to
    the ``2*size - 1`` offsets that occur when it was learned at another window/grid size.
    """
    n = 2 * size - 1
    if table.shape[0] != n:
        table = F.interpolate(table.t().unsqueeze(0).float(), size=n, mode="linear",
                              align_corners=False).squeeze(0).t().to(table.dtype)
    coords = torch.arange(size, device=table.device)
    return table[coords[:, None] - coords[None, :] + size - 1]


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            size: tuple[int, int]) -> torch.Tensor:
    """MViTv2/ViTDet decomposed bias: ``bias[(i,j),(k,l)] = q_ij . (Rh[i-k] + Rw[j-l])``.

    q: ``(B, heads, h*w, head_dim)`` (unscaled); returns ``(B, heads, h*w, h*w)``.
    """
    b, nh, n, d = q.shape
    h, w = size
    rh, rw = _rel_pos_table(h, rel_pos_h), _rel_pos_table(w, rel_pos_w)
    rq = q.reshape(b, nh, h, w, d)
    bias_h = torch.einsum("bnhwc,hkc->bnhwk", rq, rh.to(q.dtype))
    bias_w = torch.einsum("bnhwc,wkc->bnhwk", rq, rw.to(q.dtype))
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # (B, heads, h, w, h, w)
    return bias.reshape(b, nh, n, n)


# --------------------------------------------------------------------------- layers
class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches -> C channels: ``(B, 3, H, W)`` -> ``(B, H/p, W/p, C)``."""

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Multi-head self-attention over a ``(B, h, w, C)`` token grid (a window or the image).

    Args:
        dim: channels C.
        num_heads: heads; ``C % num_heads == 0``.
        qkv_bias: bias on the fused qkv projection (ViT/MAE default: on).
        impl: ``'fused'`` = ``F.scaled_dot_product_attention`` (flash/efficient kernels on GPU);
            ``'naive'`` = explicit ``softmax(q k^T / sqrt(d)) v`` that materialises the attention
            matrix (kept to measure what fusing saves).
        rel_pos_size: ``(h, w)`` the per-axis relative-position tables are sized for, or None
            for no relative position bias.
        rel_pos_zero_init: start the tables at zero (the block then equals the no-bias block).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "fused",
                 rel_pos_size: tuple[int, int] | None = None,
                 rel_pos_zero_init: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {impl!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.impl = impl
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = rel_pos_size is not None
        if self.use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size[1] - 1, self.head_dim))
            if not rel_pos_zero_init:
                nn.init.trunc_normal_(self.rel_pos_h, std=0.02)
                nn.init.trunc_normal_(self.rel_pos_w, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        n = h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, head_dim)
        bias = None
        if self.use_rel_pos:
            bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w)).to(q.dtype)
        if self.impl == "fused":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
            if bias is not None:
                attn = attn + bias
            out = attn.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(b, h, w, c)
        return self.proj(out)


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with hidden width ``mlp_ratio * C``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel residual-branch scale (CaiT); off unless ``layer_scale_init`` is given."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block over ``(B, h, w, C)``; windowed when ``window_size > 0``.

    Windowed: the normalised grid is zero-padded to a multiple of the window, split into
    non-overlapping windows that attend separately, then stitched back and unpadded. A window
    larger than the grid along an axis is clipped to the grid (no padding tokens are added
    when the whole image fits in one window, which is then global attention).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, window_size: int = 0, attn_impl: str = "fused",
                 rel_pos_size: tuple[int, int] | None = None, rel_pos_zero_init: bool = True,
                 layer_scale_init: float | None = None) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_impl, rel_pos_size, rel_pos_zero_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.ls2 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        if self.window_size > 0:
            h, w = y.shape[1:3]
            window = (min(self.window_size, h), min(self.window_size, w))
            y, padded = window_partition(y, window)
            y = window_unpartition(self.attn(y), window, padded, (h, w))
        else:
            y = self.attn(y)
        x = x + self.drop_path(self.ls1(y))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


# --------------------------------------------------------------------------- backbone
@register_model("PlainViT")
class ViT(BaseModule):
    """Plain ViT backbone returning stride-16 feature maps of chosen blocks (no cls token).

    Args:
        size: ``tiny | small | base | large`` (:data:`SIZES`); ``embed_dim``,
            ``depth``, ``num_heads``, ``mlp_ratio`` override single fields (tests use tiny dims).
        patch_size: patch (= output stride), 16.
        pretrain_img_size: image side the weights were pretrained at; the absolute position
            embedding is learned on that grid (``pretrain_img_size / patch_size``) and resized
            bicubically to each input's grid at forward time.
        in_channels: image channels.
        drop_path_rate: stochastic depth, increasing linearly from 0 to this over the blocks.
        attention: ``'hybrid'`` (windowed, plus global attention in the last block of each
            quarter), ``'windowed'`` or ``'global'``; ``global_blocks`` (explicit indices)
            overrides it.
        window_size: window side in tokens; default the pretraining grid side.
        use_rel_pos: add the decomposed relative position bias (ViTDet) in every block; tables
            are sized for the block's window (windowed) or the pretraining grid (global) and
            linearly resized to the actual size. ``rel_pos_zero_init`` starts them at zero.
        layer_scale_init: LayerScale initial value; None (default) = no layer scale.
        attn_impl: ``'fused'`` (SDPA, default) or ``'naive'``.
        with_cp: activation checkpointing (``torch.utils.checkpoint``, non-reentrant) for all
            blocks (True) or the listed block indices; trades compute for activation memory.
        out_indices: blocks whose outputs are returned (sorted); default the quarter ends.
        pretrained: weights file (``.safetensors`` or a state_dict ``.pth``) that
            :meth:`init_weights` loads with :func:`components.models.weights.load_backbone_weights`.
        init_cfg: mmengine init config (used only when ``pretrained`` is None).

    Initialization ("random" scheme, done in the constructor): every Linear and the patch
    convolution get ``trunc_normal(std=0.02)`` weights and zero bias; ``pos_embed``
    ``trunc_normal(std=0.02)``; LayerNorms weight 1, bias 0; rel-pos tables zero (or
    ``trunc_normal(0.02)`` with ``rel_pos_zero_init=False``). As in timm/ViTDet the
    truncation bounds are torch's default +-2 absolute, so in effect this is N(0, 0.02^2).
    """

    def __init__(self, size: str = "base", *, patch_size: int | None = None,
                 pretrain_img_size: int | Sequence[int] = 224, in_channels: int = 3,
                 embed_dim: int | None = None, depth: int | None = None,
                 num_heads: int | None = None, mlp_ratio: float | None = None,
                 qkv_bias: bool = True, drop_path_rate: float = 0.0,
                 attention: str = "hybrid", global_blocks: Sequence[int] | None = None,
                 window_size: int | None = None, use_rel_pos: bool = False,
                 rel_pos_zero_init: bool = True, layer_scale_init: float | None = None,
                 attn_impl: str = "fused", with_cp: bool | Sequence[int] = False,
                 out_indices: Sequence[int] | None = None, pretrained: str | Path | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        spec = get_size(size)
        self.patch_size = patch_size or spec.patch_size
        self.embed_dim = embed_dim or spec.embed_dim
        self.depth = depth or spec.depth
        num_heads = num_heads or spec.num_heads
        mlp_ratio = mlp_ratio or spec.mlp_ratio
        pre = (pretrain_img_size, pretrain_img_size) if isinstance(pretrain_img_size, int) \
            else tuple(pretrain_img_size)
        self.pretrain_grid = (pre[0] // self.patch_size, pre[1] // self.patch_size)
        self.window_size = window_size if window_size is not None else self.pretrain_grid[0]
        self.global_blocks = global_block_indices(self.depth, attention, global_blocks)
        self.out_indices = tuple(sorted(out_indices)) if out_indices is not None \
            else quarter_indices(self.depth)
        if not all(0 <= i < self.depth for i in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} outside 0..{self.depth - 1}")
        cp = with_cp if not isinstance(with_cp, bool) else (range(self.depth) if with_cp else ())
        self.cp_blocks = frozenset(int(i) for i in cp)
        self.pretrained = pretrained

        self.patch_embed = PatchEmbed(in_channels, self.embed_dim, self.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pretrain_grid[0] * self.pretrain_grid[1],
                                                  self.embed_dim))
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        dpr = [drop_path_rate * i / max(self.depth - 1, 1) for i in range(self.depth)]
        self.blocks = nn.ModuleList()
        for i in range(self.depth):
            is_global = i in self.global_blocks
            rel_size = None
            if use_rel_pos:
                rel_size = self.pretrain_grid if is_global else (self.window_size,) * 2
            self.blocks.append(Block(
                self.embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path=dpr[i],
                window_size=0 if is_global else self.window_size, attn_impl=attn_impl,
                rel_pos_size=rel_size, rel_pos_zero_init=rel_pos_zero_init,
                layer_scale_init=layer_scale_init))
        self._init_random()

    # ------------------------------------------------------------------ init / loading
    def _init_random(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Load ``pretrained`` (and log the load report) or defer to mmengine's ``init_cfg``."""
        if self.pretrained:
            from components.models.weights import load_backbone_weights

            report = load_backbone_weights(self, self.pretrained)
            get_logger().info(f"PlainViT: {report}")
            self._is_init = True  # tell mmengine not to re-initialise
        else:
            super().init_weights()

    def no_weight_decay(self) -> set[str]:
        """Parameter names (relative to this module) to exclude from weight decay.

        The absolute position embedding and relative-position tables; norms and biases are
        left to the optimizer constructor's usual 1-D rule.
        """
        names = {"pos_embed"}
        names.update(n for n, _ in self.named_parameters() if ".rel_pos_" in n)
        return names

    def get_layer_id(self, param_name: str) -> int:
        """See :func:`layer_id`; ``num_layers = depth + 2``."""
        return layer_id(param_name, self.depth)

    # ------------------------------------------------------------------ forward
    def _pos_embed_at(self, grid: tuple[int, int]) -> torch.Tensor:
        """Position embedding ``(1, h, w, C)`` for a token grid.

        Resizes are cached per grid only when no gradient flows (eval / ``no_grad``), keyed
        on the parameter's version so an optimizer step or a weight load invalidates them.
        """
        if grid == self.pretrain_grid:
            return self.pos_embed.reshape(1, *grid, self.embed_dim)
        pe = self.pos_embed
        if torch.is_grad_enabled() and pe.requires_grad:
            return resize_pos_embed(pe, self.pretrain_grid, grid)
        key = (grid, pe.device, pe.dtype, pe._version)
        if key not in self._pos_cache:
            if len(self._pos_cache) >= 16:
                self._pos_cache.clear()
            self._pos_cache[key] = resize_pos_embed(pe.detach(), self.pretrain_grid, grid)
        return self._pos_cache[key]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x: ``(B, C_in, H, W)`` (padded on the right/bottom to a multiple of the patch)
        -> tuple of ``(B, C, ceil(H/16), ceil(W/16))``, one per ``out_indices`` entry."""
        p = self.patch_size
        pad_h, pad_w = (-x.shape[2]) % p, (-x.shape[3]) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.patch_embed(x)  # (B, h, w, C)
        x = x + self._pos_embed_at((x.shape[1], x.shape[2]))
        outs = []
        for i, blk in enumerate(self.blocks):
            if i in self.cp_blocks and torch.is_grad_enabled():
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def extra_repr(self) -> str:
        return (f"pretrain_grid={self.pretrain_grid}, window={self.window_size}, "
                f"global_blocks={self.global_blocks}, out_indices={self.out_indices}, "
                f"checkpointed={sorted(self.cp_blocks)}")


# --------------------------------------------------------------------------- the family
# mmpretrain VisionTransformer / MAEViT / MoCoV3ViT -> ours (timm / MAE names already match).
_MMPRETRAIN_RENAMES = (
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.attn\.gamma1\.weight$", r"blocks.\1.ls1.gamma"),
    (r"^layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.ffn\.gamma2\.weight$", r"blocks.\1.ls2.gamma"),
)
_EXTRA_TOKENS = ("cls_token", "dist_token")


def _pos_embed_grid(src: torch.Tensor, extra_tokens: int) -> torch.Tensor:
    """Checkpoint pos_embed -> ``(1, g*g, C)`` without cls/extra tokens (square grid assumed)."""
    if src.ndim == 4:  # (1, h, w, C)
        return src.reshape(1, -1, src.shape[-1])
    n = src.shape[1]
    for extra in dict.fromkeys((extra_tokens, 0, 1, 2)):
        side = math.isqrt(n - extra) if n > extra else 0
        if side * side == n - extra:
            return src[:, extra:]
    raise ValueError(f"pos_embed: cannot read {n} positions as a square grid plus cls tokens")


class ViTFamily(BackboneFamily):
    """The paper's plain ViT: ``model.size`` one of :data:`SIZES`.

    Reads ``patch_size``, ``pretrain_img_size`` (windows = the pretraining grid), ``attention``,
    ``rel_pos`` (decomposed relative position bias), ``drop_path``,
    ``activation_checkpointing``, ``attn_impl`` and ``adapter`` (how the four stride-16 block
    outputs become FPN's strides 4-32: :class:`components.models.adapter.ViTFPNAdapter`);
    ``arch`` (not in params.yaml) overrides ``embed_dim`` / ``depth`` / ``num_heads`` /
    ``mlp_ratio`` for tiny test models.
    """

    name = "vit"
    variants = SIZES
    module = ViT
    reads = ("patch_size", "pretrain_img_size", "attention", "rel_pos", "drop_path",
             "activation_checkpointing", "attn_impl", "adapter")

    @property
    def config_type(self) -> str:
        return "PlainViT"

    def config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        self.variant(model.get("size", "tiny"))
        checkpoint = model.get("checkpoint") or None
        return dict(type="PlainViT", size=model.get("size", "tiny"),
                    patch_size=int(model.get("patch_size", 16)),
                    pretrain_img_size=int(model.get("pretrain_img_size", 224)),
                    attention=str(model.get("attention", "hybrid")),
                    use_rel_pos=bool(model.get("rel_pos", False)),
                    drop_path_rate=float(model.get("drop_path", 0.0)),
                    with_cp=bool(model.get("activation_checkpointing", False)),
                    attn_impl=str(model.get("attn_impl", "fused")),
                    out_indices=None,  # the quarter ends: blocks d/4, d/2, 3d/4, d
                    pretrained=str(checkpoint) if checkpoint else None,
                    **dict(model.get("arch") or {}))  # expert: single dims (tiny test models)

    def pretraining_config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """Global attention in every block (at the pretraining size a window IS the grid, so the
        parameters are the detector's); a model shallower than 4 blocks returns its last."""
        cfg = self.config(model)
        depth = self._dims(cfg)[1]
        cfg.update(attention="global", pretrained=None,
                   out_indices=None if depth >= 4 else (depth - 1,))
        return cfg

    def pooled_features(self, module: nn.Module, imgs: torch.Tensor) -> torch.Tensor:
        """Mean of the last block's tokens (MAE's ``global_pool``; the ViT has no cls token),
        computed as a token sequence, which needs the pretraining set-up (global attention)."""
        from components.pretrain.common import embed_patches, run_blocks

        return run_blocks(module, embed_patches(module, imgs) + module.pos_embed).mean(dim=1)

    def _dims(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        spec = get_size(cfg.get("size", "tiny"))
        return int(cfg.get("embed_dim") or spec.embed_dim), int(cfg.get("depth") or spec.depth)

    def output_shape(self, cfg: Mapping[str, Any]) -> dict[str, FeatureShape]:
        channels, depth = self._dims(cfg)
        patch = int(cfg.get("patch_size") or get_size(cfg.get("size", "tiny")).patch_size)
        indices = cfg.get("out_indices")
        indices = tuple(sorted(indices)) if indices is not None else quarter_indices(depth)
        return {f"block{i}": (channels, patch) for i in indices}

    def pyramid(self, cfg: Mapping[str, Any], model: Mapping[str, Any]
                ) -> tuple[list[dict[str, Any]], dict[str, FeatureShape]]:
        """The adapter of ``model.adapter``: ``multiscale`` / ``simple`` -> strides 4, 8, 16, 32
        (x patch/16); ``single`` -> the last block's stride-16 map only (paper Table 2)."""
        mode = model.get("adapter", "multiscale")
        if mode not in ADAPTER_MODES:
            raise ValueError(f"model.adapter must be one of {list(ADAPTER_MODES)}, got {mode!r}")
        shape = self.output_shape(cfg)
        channels, stride = next(iter(shape.values()))
        neck = dict(type="ViTFPNAdapter", in_channels=channels, mode=mode)
        if mode == "single":
            return [neck], {"p4": (channels, stride)}
        return [neck], {f"p{i + 2}": (channels, int(stride * f)) for i, f in
                        enumerate((0.25, 0.5, 1, 2))}

    # -- checkpoints
    def prepare_checkpoint(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        renamed = {}
        for key, value in state.items():
            for pattern, repl in _MMPRETRAIN_RENAMES:
                new, n = re.subn(pattern, repl, key)
                if n:
                    key = new
                    break
            renamed[key] = value
        return renamed

    def fit_tensor(self, key: str, value: torch.Tensor, want: torch.Size,
                   state: dict[str, torch.Tensor]) -> torch.Tensor:
        """``pos_embed``: drop cls tokens, resize the grid bicubically; rel-pos tables: resize
        linearly to the window; anything else must match exactly."""
        if key == "pos_embed":
            if value.shape[-1] != want[-1]:
                raise shape_error(key, value.shape, want, " (embed dim differs)")
            grid = _pos_embed_grid(value, sum(t in state for t in _EXTRA_TOKENS))
            if grid.shape != want:
                side = math.isqrt(grid.shape[1])
                dst = (math.isqrt(want[1]),) * 2
                grid = resize_pos_embed(grid, (side, side), dst).reshape(want)
            return grid
        if ".rel_pos_" in key and value.shape != want and value.shape[1:] == want[1:]:
            out = F.interpolate(value.t().unsqueeze(0).float(), size=want[0], mode="linear",
                                align_corners=False)
            return out.squeeze(0).t().to(value.dtype)
        return super().fit_tensor(key, value, want, state)


BACKBONES.register("vit", ViTFamily())
