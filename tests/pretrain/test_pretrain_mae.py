"""MAE: the encoder sees only the visible 25%, the loss uses masked patches and per-patch norms."""
from __future__ import annotations

import pytest
import torch
from pretrain_helpers import IMG, TINY_ARCH

from components.pretrain.common import build_backbone, patchify, unpatchify
from components.pretrain.mae import MAEPretrainer, mae_loss, random_masking

N = (IMG // 16) ** 2  # 16 patches


def tiny_mae(**kw) -> MAEPretrainer:
    torch.manual_seed(0)
    return MAEPretrainer(build_backbone("tiny", IMG, arch=TINY_ARCH), decoder_dim=16,
                         decoder_depth=1, decoder_heads=2, **kw)


def test_encoder_blocks_see_exactly_a_quarter_of_the_tokens() -> None:
    model = tiny_mae()
    seen = []
    hooks = [blk.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
             for blk in model.backbone.blocks]
    imgs = torch.randn(3, 3, IMG, IMG)
    latent, mask, ids_restore = model.forward_encoder(imgs)
    for h in hooks:
        h.remove()
    assert latent.shape == (3, N // 4, TINY_ARCH["embed_dim"])
    assert seen == [(3, 1, N // 4, TINY_ARCH["embed_dim"])] * TINY_ARCH["depth"]
    assert mask.shape == (3, N) and torch.equal(mask.sum(1), torch.full((3,), N * 0.75))
    # The decoder restores all N positions.
    assert model.forward_decoder(latent, ids_restore).shape == (3, N, 16 * 16 * 3)


def test_random_masking_keeps_the_lowest_noise_and_is_invertible() -> None:
    x = torch.arange(2 * 8, dtype=torch.float32).reshape(2, 8, 1)
    noise = torch.tensor([[0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4],
                          [0.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1, 0.2]])
    visible, mask, ids_restore = random_masking(x, 0.75, noise)
    assert visible.squeeze(-1).tolist() == [[1.0, 3.0], [8.0, 14.0]]
    assert mask.tolist() == [[1, 0, 1, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 0, 1]]
    # Appending the masked tokens and gathering with ids_restore gives patch order back.
    shuffled = x.gather(1, noise.argsort(1).unsqueeze(-1))
    assert torch.equal(shuffled.gather(1, ids_restore.unsqueeze(-1)), x)
    # Different samples get different masks (per-sample shuffle).
    _, m, _ = random_masking(torch.zeros(64, 16, 4), 0.75)
    assert len({tuple(r.tolist()) for r in m}) > 1


def test_loss_counts_only_masked_patches_with_normalised_targets() -> None:
    torch.manual_seed(0)
    imgs = torch.rand(2, 3, 32, 32)
    target = patchify(imgs, 16)                      # (2, 4, 768)
    norm = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    # Exact prediction on masked patches, garbage on visible ones: zero loss.
    pred = torch.where(mask.bool().unsqueeze(-1), norm, torch.randn_like(norm) * 100)
    assert mae_loss(imgs, pred, mask, 16).item() == pytest.approx(0.0, abs=1e-10)
    # Garbage on exactly one masked patch: the loss is that patch's error / number masked.
    bad = pred.clone()
    bad[1, 3] += 2.0
    assert mae_loss(imgs, bad, mask, 16).item() == pytest.approx(4.0 / 3, rel=1e-5)
    # Targets are per-patch normalised: scaling/shifting every patch changes nothing.
    scale = torch.tensor([3.0, 0.5, 2.0, 7.0]).view(1, 4, 1)
    shifted = unpatchify(target * scale + 5.0, 16, (2, 2))
    assert mae_loss(shifted, pred, mask, 16).item() == pytest.approx(0.0, abs=1e-8)
    # ... while the raw-pixel loss does see the change.
    assert mae_loss(shifted, pred, mask, 16, norm_pix=False).item() > 1.0


def test_fixed_sincos_pos_embed_is_frozen_and_decoder_is_separate() -> None:
    model = tiny_mae()
    assert not model.backbone.pos_embed.requires_grad
    imgs = torch.randn(2, 3, IMG, IMG)
    model({"image": imgs})["loss"].backward()
    assert model.backbone.pos_embed.grad is None
    assert model.backbone.blocks[0].attn.qkv.weight.grad is not None
    assert not any(k.startswith("decoder") for k in model.backbone.state_dict())
