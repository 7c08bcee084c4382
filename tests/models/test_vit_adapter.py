"""ViT-to-FPN adapter: strides per mode, which blocks feed which scale, norms."""
from __future__ import annotations

import pytest
import torch

from components.models import ADAPTER_MODES, ViT, ViTFPNAdapter
from components.models.adapter import LayerNorm2d, build_norm2d


def block_maps(c: int = 16, h: int = 8, w: int = 6) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, c, h, w, generator=g) for _ in range(4))


@pytest.mark.parametrize("mode", ADAPTER_MODES)
def test_output_strides_per_mode(mode: str) -> None:
    adapter = ViTFPNAdapter(16, mode=mode)
    outs = adapter(block_maps())
    h16, w16 = 8, 6  # stride-16 grid of a 128 x 96 image
    shapes = [tuple(o.shape) for o in outs]
    expected = [(2, 16, h16 * 16 // s, w16 * 16 // s) for s in adapter.strides]
    assert shapes == expected
    assert adapter.out_channels == [16] * len(adapter.strides)
    assert adapter.strides == ((16,) if mode == "single" else (4, 8, 16, 32))


def test_multiscale_uses_one_block_per_scale_and_simple_uses_last() -> None:
    maps = block_maps()
    multi = ViTFPNAdapter(16, mode="multiscale")
    outs = multi(maps)
    assert torch.equal(outs[2], maps[2])  # identity branch
    assert torch.equal(outs[3], torch.nn.functional.max_pool2d(maps[3], 2))
    simple = ViTFPNAdapter(16, mode="simple")
    simple.load_state_dict(multi.state_dict())
    s_outs = simple(maps)
    assert all(torch.equal(s, simple(maps[3:])[i]) for i, s in enumerate(s_outs))
    assert torch.equal(s_outs[2], maps[3])
    assert torch.equal(ViTFPNAdapter(16, mode="single")(maps)[0], maps[3])
    with pytest.raises(ValueError, match="needs 4 backbone maps"):
        multi(maps[:1])


def test_backbone_to_adapter_end_to_end() -> None:
    vit = ViT("tiny", embed_dim=32, depth=4, num_heads=2, pretrain_img_size=64)
    outs = ViTFPNAdapter(32)(vit(torch.randn(1, 3, 128, 64)))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 16), (16, 8), (8, 4), (4, 2)]


@pytest.mark.parametrize("cfg, cls", [(dict(type="LN2d"), LayerNorm2d),
                                      (dict(type="BN"), torch.nn.BatchNorm2d),
                                      (dict(type="GN", num_groups=4), torch.nn.GroupNorm)])
def test_norm_choices(cfg: dict, cls: type) -> None:
    adapter = ViTFPNAdapter(16, norm_cfg=cfg)
    assert isinstance(adapter.scales[0][1], cls)
    adapter(block_maps())
    with pytest.raises(ValueError, match="norm_cfg type"):
        build_norm2d(dict(type="IN"), 16)


def test_layernorm2d_normalises_channels() -> None:
    x = torch.randn(2, 16, 3, 5) * 4 + 3
    y = LayerNorm2d(16)(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 3, 5), atol=1e-3, rtol=0)
