"""Plain-ViT model sizes as data (ViT-Ti/S/B/L, patch 16, MLP ratio 4).

Why data: the backbone, the benchmarks and the tests all sweep the same table; adding a size is
adding one row. ``encoder_param_count`` is the closed form of the backbone's parameter count
(patch embedding + learned absolute position embedding + blocks, no cls token, no head), so
size claims ("ViT-B is ~86M") are checked without building the model.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ViTSize", "SIZES", "get_size", "encoder_param_count"]


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
                       "(components/models/sizes.py)") from None


def encoder_param_count(size: ViTSize | str, pretrain_img_size: int = 224, in_channels: int = 3,
                        layer_scale: bool = False) -> int:
    """Parameters of :class:`components.models.vit.ViT` with rel-pos off, counted in closed form.

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
