"""MobileViT / MobileNetV2 (components/models/backbones/mobile.py): the sizes the paper reports,
and the two properties of the MobileViT block the paper relies on (the generic contract sweep
in test_backbone_contract.py covers shapes and weights)."""
from __future__ import annotations

import pytest
import torch
from timm.models.mobilevit import MobileVitBlock
from torch import nn

from components.models.backbones import BACKBONES
from components.models.backbones.mobile import (MOBILENETV2_VARIANTS, MOBILEVIT_VARIANTS,
                                                classification_param_count)


@pytest.mark.parametrize("size", list(MOBILEVIT_VARIANTS))
def test_mobilevit_classification_models_have_the_papers_parameter_counts(size):
    """1.3M / 2.3M / 5.6M (MobileViT paper, ImageNet-1k models), to the paper's 0.1M rounding."""
    variant = MOBILEVIT_VARIANTS[size]
    millions = classification_param_count(variant) / 1e6
    assert abs(millions - variant.paper_params_m) <= 0.05, (size, millions)


def test_mobilenetv2_is_the_papers_width_1_model():
    """MobileNetV2 1.0: 3.4M in its paper; timm's reference counts 3.50M (its head has bias)."""
    millions = classification_param_count(MOBILENETV2_VARIANTS["1.0"]) / 1e6
    assert 3.4 <= millions <= 3.55, millions


def _vit_blocks(size: str = "xxs") -> list[MobileVitBlock]:
    family = BACKBONES["mobilevit"]
    module = family.build(family.config({"size": size}))
    return [m for m in module.modules() if isinstance(m, MobileVitBlock)]


def test_each_mobilevit_variant_has_three_mobilevit_blocks_with_2x2_patches():
    for size in MOBILEVIT_VARIANTS:
        blocks = _vit_blocks(size)
        assert len(blocks) == 3, size  # at strides 8, 16, 32 (paper Figure 1b)
        assert all(tuple(b.patch_size) == (2, 2) for b in blocks)


class _Record(nn.Module):
    """Identity that keeps what it saw (stands in for the transformer)."""

    def forward(self, x):
        self.seen = x.detach().clone()
        return x


def test_unfold_fold_round_trips_and_groups_pixels_by_position_in_patch():
    block = _vit_blocks()[0].eval()
    block.transformer, block.norm = _Record(), nn.Identity()
    local, folded = {}, {}
    block.conv_1x1.register_forward_hook(lambda m, i, o: local.setdefault("x", o.detach()))
    block.conv_proj.register_forward_pre_hook(lambda m, i: folded.setdefault("x", i[0].detach()))
    with torch.no_grad():
        block(torch.randn(2, block.conv_kxk.conv.in_channels, 8, 12))
    x = local["x"]  # (B, d, H, W) before unfolding
    assert torch.equal(folded["x"], x)  # fold(unfold(x)) == x
    tokens = block.transformer.seen  # (B * P, N, d): one sequence per position in a patch
    b, d, h, w = x.shape
    ph, pw = block.patch_size
    nh, nw = h // ph, w // pw
    assert tokens.shape == (b * ph * pw, nh * nw, d)
    for bi, i, j, pi, pj in [(0, 0, 0, 0, 0), (1, 1, 0, 2, 5), (0, 1, 1, 3, 1), (1, 0, 1, 1, 4)]:
        seq = bi * ph * pw + i * pw + j  # the position (i, j) inside every patch
        patch = pi * nw + pj  # the patch in row-major order
        assert torch.equal(tokens[seq, patch], x[bi, :, pi * ph + i, pj * pw + j])


def test_every_output_pixel_sees_every_input_pixel():
    """Effective receptive field H x W after ONE MobileViT block (local n x n conv covers the
    patch, the transformer covers all patches), unlike the n x n of one conv layer."""
    block = _vit_blocks()[0].eval()
    size = 12
    x = torch.randn(1, block.conv_kxk.conv.in_channels, size, size, requires_grad=True)
    out = block(x)
    for r, c in [(0, 0), (5, 7), (size - 1, size - 1), (0, size - 1)]:
        (grad,) = torch.autograd.grad(out[0, :, r, c].sum(), x, retain_graph=True)
        reach = grad[0].abs().sum(dim=0)
        assert (reach > 0).all(), f"output pixel ({r}, {c}) misses {(reach == 0).sum()} inputs"
    conv_reach = torch.autograd.grad(block.conv_kxk(x)[0, :, 5, 7].sum(), x)[0][0].abs().sum(0)
    assert int((conv_reach > 0).sum()) == 9  # a 3 x 3 conv alone sees 9 pixels
