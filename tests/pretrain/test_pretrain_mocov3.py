"""MoCo v3: momentum-update math and schedule, InfoNCE, MLP heads, the frozen patch projection."""
from __future__ import annotations

import math

import pytest
import torch
from pretrain_helpers import IMG, TINY_ARCH
from torch import nn

from components.pretrain.common import build_backbone
from components.pretrain.mocov3 import MoCoV3Pretrainer, build_mlp, contrastive_loss, momentum_at


def tiny_moco(**kw) -> MoCoV3Pretrainer:
    torch.manual_seed(0)
    return MoCoV3Pretrainer(build_backbone("tiny", IMG, arch=TINY_ARCH), proj_dim=8, mlp_dim=16,
                            **kw)


def test_momentum_update_is_an_exponential_moving_average() -> None:
    model = tiny_moco()
    with torch.no_grad():  # make the two encoders differ
        for p in model.base.parameters():
            p.add_(torch.randn_like(p))
    q = [p.clone() for p in model.base.parameters()]
    k = [p.clone() for p in model.momentum_encoder.parameters()]
    model.momentum_update(0.9)
    for p_q, p_k, new in zip(q, k, model.momentum_encoder.parameters()):
        torch.testing.assert_close(new, 0.9 * p_k + 0.1 * p_q)
    model.momentum_update(1.0)  # m = 1: keys frozen
    for before, after in zip([p.clone() for p in model.momentum_encoder.parameters()],
                             model.momentum_encoder.parameters()):
        assert torch.equal(before, after)
    assert not any(p.requires_grad for p in model.momentum_encoder.parameters())


def test_momentum_schedule_is_a_half_cosine_to_one() -> None:
    assert momentum_at(0, 100, 0.99) == pytest.approx(0.99)
    assert momentum_at(50, 100, 0.99) == pytest.approx(0.995)
    assert momentum_at(100, 100, 0.99) == pytest.approx(1.0)
    values = [momentum_at(s, 100, 0.99) for s in range(101)]
    assert values == sorted(values)
    model = tiny_moco()
    model.after_step(50, 100)
    assert model.momentum == pytest.approx(0.995)


def test_contrastive_loss_rewards_matching_pairs() -> None:
    torch.manual_seed(0)
    k = torch.randn(8, 16)
    matched = contrastive_loss(k * 3.0, k, temperature=0.2)       # q_i parallel to k_i
    shuffled = contrastive_loss(k.roll(1, 0), k, temperature=0.2)
    assert matched < 0.1 < shuffled
    # 2 * tau * CE with uniform logits = 2 * tau * log(B)
    uniform = contrastive_loss(torch.ones(8, 16), torch.ones(8, 16), temperature=0.2)
    assert uniform.item() == pytest.approx(2 * 0.2 * math.log(8), rel=1e-5)


def test_mlp_heads_have_the_paper_structure() -> None:
    proj = build_mlp(3, 32, 64, 16, last_bn=True)
    pred = build_mlp(2, 16, 64, 16, last_bn=False)
    assert [type(m) for m in proj] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear, nn.BatchNorm1d]
    assert proj[-1].affine is False
    assert [type(m) for m in pred] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert proj(torch.randn(4, 32)).shape == (4, 16)


def test_step_trains_base_only_and_keeps_patch_projection_frozen() -> None:
    model = tiny_moco()
    patch = model.backbone.patch_embed.proj.weight.clone()
    x = torch.randn(4, 3, IMG, IMG)
    out = model({"view1": x, "view2": x.flip(-1)})
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.backbone.patch_embed.proj.weight.grad is None
    assert model.backbone.blocks[0].attn.qkv.weight.grad is not None
    assert model.predictor[0].weight.grad is not None
    assert all(p.grad is None for p in model.momentum_encoder.parameters())
    assert torch.equal(model.backbone.patch_embed.proj.weight, patch)
