"""Backbone weight loading: round trip, resizing, cls tokens, foreign key names, reports, errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from components.models import ViT, load_backbone_weights, save_backbone_weights
from components.models.backbones.vit import resize_pos_embed

TINY = dict(embed_dim=32, depth=4, num_heads=2)


def tiny_vit(seed: int = 0, **kw) -> ViT:
    torch.manual_seed(seed)
    return ViT("tiny", **{**TINY, "pretrain_img_size": 128, "window_size": 4, **kw}).eval()


def image() -> torch.Tensor:
    return torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))


def to_mmpretrain_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names -> mmpretrain VisionTransformer names (written independently of the loader)."""
    rules = [(r"^patch_embed\.proj\.", "patch_embed.projection."),
             (r"^blocks\.(\d+)\.norm1\.", r"layers.\1.ln1."),
             (r"^blocks\.(\d+)\.norm2\.", r"layers.\1.ln2."),
             (r"^blocks\.(\d+)\.attn\.", r"layers.\1.attn."),
             (r"^blocks\.(\d+)\.mlp\.fc1\.", r"layers.\1.ffn.layers.0.0."),
             (r"^blocks\.(\d+)\.mlp\.fc2\.", r"layers.\1.ffn.layers.1.")]
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    src = tiny_vit(seed=0)
    path = save_backbone_weights(src, tmp_path / "w" / "vit.safetensors")
    dst = tiny_vit(seed=1)
    assert not torch.allclose(src(image())[-1], dst(image())[-1])
    report = load_backbone_weights(dst, path)
    assert report.loaded == len(src.state_dict())
    assert not (report.missing or report.unexpected or report.interpolated or report.ignored)
    for a, b in zip(src(image()), dst(image())):
        assert torch.equal(a, b)
    assert "loaded 51/51" in str(report)  # patch conv 2 + pos 1 + 4 blocks x 12


def test_pos_embed_resized_when_pretrained_on_another_grid(tmp_path: Path) -> None:
    src = tiny_vit(pretrain_img_size=96)  # 6x6 grid
    torch.save({"state_dict": src.state_dict()}, tmp_path / "vit96.pth")
    dst = tiny_vit(seed=1)  # 8x8 grid
    report = load_backbone_weights(dst, tmp_path / "vit96.pth")
    assert report.interpolated == {"pos_embed": ((1, 36, 32), (1, 64, 32))}
    expected = resize_pos_embed(src.pos_embed, (6, 6), (8, 8)).reshape(1, 64, 32)
    torch.testing.assert_close(dst.pos_embed, expected)
    assert torch.equal(dst.blocks[2].mlp.fc2.weight, src.blocks[2].mlp.fc2.weight)


def test_cls_token_is_stripped_from_pos_embed(tmp_path: Path) -> None:
    src = tiny_vit()
    state = dict(src.state_dict())
    cls_pos = torch.full((1, 1, 32), 7.0)
    state["pos_embed"] = torch.cat([cls_pos, state["pos_embed"]], dim=1)  # (1, 65, 32)
    state["cls_token"] = torch.zeros(1, 1, 32)
    torch.save(state, tmp_path / "cls.pth")
    dst = tiny_vit(seed=1)
    report = load_backbone_weights(dst, tmp_path / "cls.pth")
    assert torch.equal(dst.pos_embed, src.pos_embed)
    assert report.ignored == ["cls_token"] and not report.unexpected
    assert report.interpolated["pos_embed"] == ((1, 65, 32), (1, 64, 32))


def test_mmpretrain_names_and_wrappers_are_mapped(tmp_path: Path) -> None:
    src = tiny_vit()
    state = to_mmpretrain_names(src.state_dict())
    assert "layers.0.ffn.layers.0.0.weight" in state
    wrapped = {f"backbone.{k}": v for k, v in state.items()}
    wrapped["backbone.ln1.weight"] = torch.ones(32)  # mmpretrain's final norm: not ours
    wrapped["neck.decoder_blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    wrapped["neck.mask_token"] = torch.zeros(1, 1, 32)
    torch.save({"meta": {"epoch": 1}, "state_dict": wrapped}, tmp_path / "mae.pth")
    dst = tiny_vit(seed=1)
    report = load_backbone_weights(dst, tmp_path / "mae.pth")
    assert report.loaded == len(src.state_dict()) and not report.missing and not report.unexpected
    assert report.ignored == ["ln1.weight", "neck.decoder_blocks.0.attn.qkv.weight",
                              "neck.mask_token"]
    assert torch.equal(dst(image())[-1], src(image())[-1])


def test_mmpretrain_vision_transformer_checkpoint_matches_outputs(tmp_path: Path) -> None:
    mmpretrain_models = pytest.importorskip("mmpretrain.models")
    torch.manual_seed(0)
    theirs = mmpretrain_models.VisionTransformer(
        arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=128),
        img_size=128, patch_size=16, out_type="featmap", with_cls_token=False,
        final_norm=False, out_indices=(1, 3))
    theirs.eval()  # (mmpretrain's train() override returns None: no chaining)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in theirs.state_dict().items()}},
               tmp_path / "mmpretrain.pth")
    ours = tiny_vit(seed=1, attention="global", out_indices=(1, 3))
    report = load_backbone_weights(ours, tmp_path / "mmpretrain.pth")
    assert not report.missing and not report.unexpected, str(report)
    x = torch.randn(1, 3, 128, 128)
    for a, b in zip(ours(x), theirs(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_timm_vit_checkpoint_matches_outputs(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    theirs = timm.models.vision_transformer.VisionTransformer(
        img_size=128, patch_size=16, embed_dim=32, depth=4, num_heads=2, num_classes=10).eval()
    torch.save(theirs.state_dict(), tmp_path / "timm.pth")
    ours = tiny_vit(seed=1, attention="global")
    report = load_backbone_weights(ours, tmp_path / "timm.pth")
    assert not report.missing and not report.unexpected, str(report)
    assert {"cls_token", "head.weight", "norm.weight"} <= set(report.ignored)
    x = torch.randn(1, 3, 128, 128)
    # timm's cls token takes part in attention; compare against a cls-free timm forward instead
    tokens = theirs.patch_embed(x) + theirs.pos_embed[:, 1:]
    for blk in theirs.blocks:
        tokens = blk(tokens)
    torch.testing.assert_close(ours(x)[-1].flatten(2).transpose(1, 2), tokens,
                               rtol=1e-4, atol=1e-4)


def test_missing_and_unexpected_keys_are_reported(tmp_path: Path) -> None:
    state = dict(tiny_vit().state_dict())
    del state["blocks.1.attn.proj.bias"]
    state["blocks.0.attn.q_bias"] = torch.zeros(32)
    torch.save(state, tmp_path / "partial.pt")
    report = load_backbone_weights(tiny_vit(seed=1), tmp_path / "partial.pt")
    assert report.missing == ["blocks.1.attn.proj.bias"]
    assert report.unexpected == ["blocks.0.attn.q_bias"]
    assert "missing (1): blocks.1.attn.proj.bias" in str(report)


def test_shape_mismatch_names_key_and_shapes(tmp_path: Path) -> None:
    wide = ViT("tiny", embed_dim=48, depth=4, num_heads=2, pretrain_img_size=128)
    save_backbone_weights(wide, tmp_path / "wide.safetensors")
    with pytest.raises(ValueError, match=r"'pos_embed' has shape \(1, 64, 48\) but the backbone "
                                         r"expects \(1, 64, 32\) \(embed dim differs\)"):
        load_backbone_weights(tiny_vit(), tmp_path / "wide.safetensors")
    state = {k: v for k, v in wide.state_dict().items() if k != "pos_embed"}
    torch.save(state, tmp_path / "wide_no_pos.pth")
    with pytest.raises(ValueError, match=r"'patch_embed\.proj\.weight' has shape \(48, 3, 16, 16\)"):
        load_backbone_weights(tiny_vit(), tmp_path / "wide_no_pos.pth")
    report = load_backbone_weights(tiny_vit(), tmp_path / "wide.safetensors", strict_shapes=False)
    assert report.loaded == 0 and "pos_embed" in report.mismatched and not report.missing


def test_rel_pos_tables_resized_on_load(tmp_path: Path) -> None:
    src = tiny_vit(use_rel_pos=True, window_size=4, global_blocks=[3], rel_pos_zero_init=False)
    save_backbone_weights(src, tmp_path / "rel.safetensors")
    dst = tiny_vit(use_rel_pos=True, window_size=6, global_blocks=[3])
    report = load_backbone_weights(dst, tmp_path / "rel.safetensors")
    assert report.interpolated["blocks.0.attn.rel_pos_h"] == ((7, 16), (11, 16))
    assert "blocks.3.attn.rel_pos_h" not in report.interpolated  # global block: same grid


def test_pretrained_argument_loads_in_init_weights(tmp_path: Path) -> None:
    src = tiny_vit()
    path = save_backbone_weights(src, tmp_path / "vit.safetensors")
    dst = tiny_vit(seed=1, pretrained=str(path))
    dst.init_weights()
    assert torch.equal(dst.pos_embed, src.pos_embed)
    with pytest.raises(FileNotFoundError, match="model.checkpoint"):
        tiny_vit(pretrained=str(tmp_path / "nope.pth")).init_weights()
