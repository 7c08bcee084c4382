"""Parameter groups (weight decay rules, layer-wise lr decay) and the finite-loss wrapper."""
from __future__ import annotations

import pytest
import torch

from components.common.params import load_params
from components.train.config import build_config
from components.train.optim import FiniteLossOptimWrapper, param_groups
from testkit.finetune import tiny_params


@pytest.fixture(scope="module")
def model(tiny_ds, tmp_path_factory):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    cfg = build_config(tiny_params(load_params(), tiny_ds.root, tmp_path_factory.mktemp("w")))
    return MODELS.build(cfg.model)


def _by_name(groups):
    return {n: g for g in groups for n in g["names"]}


def test_weight_decay_rules(model):
    groups = _by_name(param_groups(model, 1e-3, 0.1, dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={"pos_embed": {"decay_mult": 0.0}})))
    assert len(groups) == sum(1 for p in model.parameters() if p.requires_grad)
    assert groups["backbone.pos_embed"]["weight_decay"] == 0
    assert groups["backbone.blocks.0.norm1.weight"]["weight_decay"] == 0      # LayerNorm
    assert groups["backbone.blocks.0.attn.qkv.bias"]["weight_decay"] == 0      # bias
    assert groups["neck.1.lateral_convs.0.bn.weight"]["weight_decay"] == 0     # BN in FPN
    assert groups["backbone.blocks.0.attn.qkv.weight"]["weight_decay"] == 0.1
    assert groups["roi_head.bbox_head.fc_cls.weight"]["weight_decay"] == 0.1
    assert {g["lr"] for g in groups.values()} == {1e-3}


def test_layer_decay_scales_backbone_only(model):
    rate, depth = 0.5, model.backbone.depth
    groups = _by_name(param_groups(model, 1e-3, 0.1, dict(layer_decay_rate=rate)))
    top = depth + 1  # num_layers - 1 with num_layers = depth + 2
    assert groups["backbone.pos_embed"]["lr_scale"] == pytest.approx(rate ** top)
    assert groups["backbone.patch_embed.proj.weight"]["lr_scale"] == pytest.approx(rate ** top)
    for i in range(depth):
        g = groups[f"backbone.blocks.{i}.mlp.fc1.weight"]
        assert g["lr_scale"] == pytest.approx(rate ** (depth - i))
        assert g["lr"] == pytest.approx(1e-3 * rate ** (depth - i))
    assert groups["rpn_head.rpn_cls.weight"]["lr_scale"] == 1.0
    assert groups["neck.0.scales.1.weight"]["lr_scale"] == 1.0


def test_constructor_builds_adamw_with_few_groups(model):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    wrapper = build_optim_wrapper(model, dict(
        type="FiniteLossOptimWrapper", constructor="LayerDecayOptimWrapperConstructor",
        optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, layer_decay_rate=0.8)))
    assert isinstance(wrapper, FiniteLossOptimWrapper)
    opt = wrapper.optimizer
    assert type(opt).__name__ == "AdamW" and opt.defaults["betas"] == (0.9, 0.99)
    # (depth + 2) layers x {decay, no decay}: a handful of groups, not one per tensor
    assert len(opt.param_groups) <= 2 * (model.backbone.depth + 2)
    n = sum(len(g["params"]) for g in opt.param_groups)
    assert n == sum(1 for p in model.parameters() if p.requires_grad)


def test_finite_loss_wrapper_skips_nan_update():
    lin = torch.nn.Linear(2, 1)
    wrapper = FiniteLossOptimWrapper(optimizer=torch.optim.SGD(lin.parameters(), lr=1.0))
    before = lin.weight.detach().clone()
    wrapper.update_params(lin(torch.ones(1, 2)).sum() * float("nan"))
    assert torch.equal(lin.weight, before) and wrapper.skipped_steps == 1
    wrapper.update_params(lin(torch.ones(1, 2)).sum())
    assert not torch.equal(lin.weight, before) and wrapper.skipped_steps == 1
