"""Plain-ViT backbone: attention placement, windows, fused vs naive, checkpointing, rel-pos, shapes."""
from __future__ import annotations

import pytest
import torch

from components.models import SIZES, ViT, encoder_param_count, get_size, global_block_indices
from components.models.backbones.vit import resize_pos_embed, window_partition, window_unpartition

TINY = dict(embed_dim=32, depth=4, num_heads=2)


def tiny_vit(**kw) -> ViT:
    torch.manual_seed(0)
    return ViT("tiny", **{**TINY, "pretrain_img_size": 128, **kw}).eval()


def image(h: int = 128, w: int = 128, b: int = 2) -> torch.Tensor:
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(1))


def copy_weights(dst: ViT, src: ViT) -> ViT:
    """Copy shared weights (a rel-pos model keeps its own, zero-initialised tables)."""
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected and all("rel_pos" in k for k in missing)
    return dst


@pytest.mark.parametrize("depth, expected", [(12, (2, 5, 8, 11)), (24, (5, 11, 17, 23))])
def test_hybrid_global_blocks_are_the_quarter_ends(depth: int, expected: tuple) -> None:
    assert global_block_indices(depth, "hybrid") == expected
    assert global_block_indices(depth, "windowed") == ()
    assert global_block_indices(depth, "global") == tuple(range(depth))
    assert global_block_indices(depth, "windowed", global_blocks=[3, 1]) == (1, 3)
    with torch.device("meta"):
        m = ViT("base" if depth == 12 else "large")
    assert m.out_indices == expected
    assert [i for i, b in enumerate(m.blocks) if b.window_size == 0] == list(expected)
    assert all(b.window_size == 14 for i, b in enumerate(m.blocks) if i not in expected)


def test_bad_attention_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="attention must be one of"):
        global_block_indices(12, "swin")
    with pytest.raises(ValueError, match="outside"):
        global_block_indices(12, global_blocks=[12])


def test_window_covering_whole_grid_equals_global() -> None:
    glob = tiny_vit(attention="global")
    win = copy_weights(tiny_vit(attention="windowed", window_size=8), glob)
    x = image(128, 128)  # 8x8 token grid == one 8x8 window
    for a, b in zip(glob(x), win(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # A smaller window must change the result (otherwise the windowing is a no-op).
    small = copy_weights(tiny_vit(attention="windowed", window_size=4), glob)
    assert not torch.allclose(glob(x)[-1], small(x)[-1], atol=1e-4)


def test_window_partition_pads_and_unpads() -> None:
    x = torch.randn(2, 10, 7, 5)
    windows, padded = window_partition(x, (4, 4))
    assert padded == (12, 8) and windows.shape == (2 * 3 * 2, 4, 4, 5)
    assert torch.equal(window_unpartition(windows, (4, 4), padded, (10, 7)), x)
    # Each window holds a contiguous tile: the first window is x[:, :4, :4].
    assert torch.equal(windows[0], x[0, :4, :4])


def test_windowed_forward_on_grid_not_divisible_by_window() -> None:
    m = tiny_vit(attention="windowed", window_size=3)
    outs = m(image(160, 112))  # 10x7 grid, window 3 -> padded to 12x9
    assert all(o.shape == (2, 32, 10, 7) for o in outs)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("attention", ["hybrid", "windowed", "global"])
def test_naive_and_fused_attention_agree(attention: str) -> None:
    fused = tiny_vit(attention=attention, window_size=4, global_blocks=[1, 3] if attention == "hybrid" else None)
    naive = copy_weights(tiny_vit(attention=attention, window_size=4, attn_impl="naive",
                                  global_blocks=[1, 3] if attention == "hybrid" else None), fused)
    x = image(96, 160)
    for a, b in zip(fused(x), naive(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_activation_checkpointing_same_loss_and_grads() -> None:
    def loss_and_grads(model: ViT) -> tuple[torch.Tensor, dict]:
        model.train()
        torch.manual_seed(3)  # drop path draws the same masks with and without checkpointing
        loss = sum(o.square().mean() for o in model(image(64, 64)))
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters()}

    cfg = dict(drop_path_rate=0.3, window_size=2, global_blocks=[1])
    plain = tiny_vit(**cfg)
    ckpt = copy_weights(tiny_vit(**cfg, with_cp=True), plain)
    some = copy_weights(tiny_vit(**cfg, with_cp=[0, 2]), plain)
    assert some.cp_blocks == {0, 2}
    ref_loss, ref_grads = loss_and_grads(plain)
    for model in (ckpt, some):
        loss, grads = loss_and_grads(model)
        torch.testing.assert_close(loss, ref_loss)
        for name, g in ref_grads.items():
            torch.testing.assert_close(grads[name], g, msg=name)


def test_rel_pos_runs_and_changes_output_once_trained() -> None:
    base = tiny_vit(window_size=4, global_blocks=[3])
    rel = copy_weights(tiny_vit(window_size=4, global_blocks=[3], use_rel_pos=True), base)
    # windowed tables are sized for the window, the global one for the pretraining grid
    assert rel.blocks[0].attn.rel_pos_h.shape == (7, 16)
    assert rel.blocks[3].attn.rel_pos_w.shape == (15, 16)
    x = image(160, 96)  # 10x6 grid: global block resizes its 15-entry tables to 19 / 11
    torch.testing.assert_close(rel(x)[-1], base(x)[-1])  # zero-initialised tables: no-op
    with torch.no_grad():
        for n, p in rel.named_parameters():
            if "rel_pos" in n:
                p.normal_(std=0.5)
    fused_out = rel(x)[-1]
    assert not torch.allclose(fused_out, base(x)[-1], atol=1e-3)
    naive = copy_weights(tiny_vit(window_size=4, global_blocks=[3], use_rel_pos=True,
                                  attn_impl="naive"), rel)
    torch.testing.assert_close(naive(x)[-1], fused_out, rtol=1e-5, atol=1e-5)
    loss = rel.train()(x)[-1].mean()
    loss.backward()
    assert rel.blocks[3].attn.rel_pos_h.grad.abs().sum() > 0
    assert "blocks.0.attn.rel_pos_h" in rel.no_weight_decay()


def test_pos_embed_resized_to_input_grid_and_cached_in_eval() -> None:
    m = tiny_vit()
    assert m.pos_embed.shape == (1, 64, 32)
    pe = resize_pos_embed(m.pos_embed, (8, 8), (12, 5))
    assert pe.shape == (1, 12, 5, 32)
    assert torch.equal(resize_pos_embed(m.pos_embed, (8, 8), (8, 8)).flatten(1, 2), m.pos_embed)
    with torch.no_grad():
        a = m._pos_embed_at((12, 5))
        assert m._pos_embed_at((12, 5)) is a  # cached
        m.pos_embed.add_(1.0)  # an optimizer step / load invalidates the cache
        b = m._pos_embed_at((12, 5))
    assert b is not a and torch.allclose(b, a + 1.0, atol=1e-5)
    # with grad enabled the resize stays in the graph
    m._pos_embed_at((12, 5)).sum().backward()
    assert m.pos_embed.grad is not None


def test_outputs_are_stride_16_maps_per_out_index() -> None:
    m = tiny_vit(out_indices=[3, 1])
    outs = m(image(200, 136, b=1))  # not multiples of 16: padded to 208 x 144
    assert m.out_indices == (1, 3)
    assert [tuple(o.shape) for o in outs] == [(1, 32, 13, 9)] * 2


def test_layer_ids_for_layer_decay() -> None:
    m = tiny_vit()
    assert m.get_layer_id("patch_embed.proj.weight") == 0
    assert m.get_layer_id("backbone.pos_embed") == 0
    assert m.get_layer_id("backbone.blocks.2.mlp.fc1.weight") == 3
    assert m.get_layer_id("neck.0.scales.1.weight") == 5
    assert "pos_embed" in m.no_weight_decay()


def test_random_init_scheme() -> None:
    m = tiny_vit()
    qkv = m.blocks[0].attn.qkv
    assert 0.015 < qkv.weight.std() < 0.025 and abs(qkv.weight.mean()) < 0.005
    assert torch.count_nonzero(qkv.bias) == 0
    assert torch.equal(m.blocks[0].norm1.weight, torch.ones(32))


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_size_builds_and_matches_closed_form_param_count(name: str) -> None:
    with torch.device("meta"):
        m = ViT(name)
    assert sum(p.numel() for p in m.parameters()) == encoder_param_count(name)
    assert m.embed_dim == get_size(name).embed_dim and len(m.blocks) == get_size(name).depth


def test_base_and_large_parameter_counts() -> None:
    assert 85e6 <= encoder_param_count("base") <= 87e6
    assert 303e6 <= encoder_param_count("large") <= 305e6
    with pytest.raises(KeyError, match="known"):
        get_size("huge")
