"""Optimizer pieces registered in mmengine: parameter groups with layer-wise lr decay, and an
optimizer wrapper that refuses to step on a non-finite loss.

``LayerDecayOptimWrapperConstructor`` (``optim_wrapper.constructor``) builds AdamW groups:

- weight decay 0 for normalisation weights (any ``*Norm*`` module), biases, and names matching
  ``paramwise_cfg.custom_keys`` with ``decay_mult=0`` (``pos_embed``, ``rel_pos``), plus the
  backbone's own ``no_weight_decay()`` names when it has that method;
- with ``paramwise_cfg.layer_decay_rate = r > 0``: backbone parameter ``p`` gets
  ``lr * r ** (num_layers - 1 - layer_id(p))`` where ``layer_id`` comes from the backbone's
  ``get_layer_id`` (patch/pos embedding 0, block i -> i + 1) and ``num_layers = depth + 2``;
  every non-backbone parameter (neck, heads) has ``layer_id = num_layers - 1``: full lr
  (BEiT / MAE / ViTDet convention). ``r = 0`` turns the decay off.

Parameters with equal (lr scale, weight decay) share one group: a handful of groups instead of
one per tensor, which keeps the optimizer step and the log short.

``FiniteLossOptimWrapper`` skips backward + step when the loss is NaN/inf, so one bad batch
does not poison the weights; :class:`components.train.hooks.NonFiniteLossGuardHook` then fails
the run after ``finetune.nan_patience`` consecutive skipped steps.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from torch import nn

__all__ = ["LayerDecayOptimWrapperConstructor", "FiniteLossOptimWrapper", "param_groups"]


def _backbone(model: nn.Module) -> nn.Module | None:
    return getattr(model, "backbone", None)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
                               nn.modules.instancenorm._InstanceNorm)) \
        or "norm" in type(module).__name__.lower()


def param_groups(model: nn.Module, base_lr: float, base_wd: float,
                 paramwise_cfg: dict) -> list[dict[str, Any]]:
    """Group ``model``'s trainable parameters by (lr scale, weight decay); see module doc.

    Each group carries ``lr``, ``weight_decay``, ``lr_scale`` and ``layer_id`` (-1 = several).
    """
    custom_keys = paramwise_cfg.get("custom_keys", {})
    norm_mult = paramwise_cfg.get("norm_decay_mult", 1.0)
    bias_mult = paramwise_cfg.get("bias_decay_mult", 1.0)
    rate = float(paramwise_cfg.get("layer_decay_rate", 0.0) or 0.0)
    backbone = _backbone(model)
    get_layer_id = getattr(backbone, "get_layer_id", None)
    if rate > 0 and get_layer_id is None:
        raise ValueError("finetune.layer_decay > 0 needs a backbone with get_layer_id(name); "
                         f"{type(backbone).__name__} has none (set finetune.layer_decay: 0)")
    num_layers = paramwise_cfg.get("num_layers") or (getattr(backbone, "depth", 0) + 2)
    no_wd_backbone = set(backbone.no_weight_decay()) if hasattr(backbone, "no_weight_decay") \
        else set()

    groups: dict[tuple[float, float, int], dict] = {}
    for mod_name, module in model.named_modules():
        norm = _is_norm(module)
        for pname, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            full = f"{mod_name}.{pname}" if mod_name else pname
            lr_mult, wd_mult = 1.0, 1.0
            matched = next((k for k in sorted(custom_keys, key=len, reverse=True) if k in full),
                           None)
            if matched is not None:
                lr_mult = custom_keys[matched].get("lr_mult", 1.0)
                wd_mult = custom_keys[matched].get("decay_mult", 1.0)
            elif norm:
                wd_mult = norm_mult
            elif pname == "bias":
                wd_mult = bias_mult
            in_backbone = full.startswith("backbone.")
            if in_backbone and full[len("backbone."):] in no_wd_backbone:
                wd_mult = 0.0
            layer = num_layers - 1
            if rate > 0 and in_backbone:
                layer = int(get_layer_id(full[len("backbone."):]))
            scale = lr_mult * (rate ** (num_layers - 1 - layer) if rate > 0 else 1.0)
            key = (scale, base_wd * wd_mult, layer if rate > 0 else -1)
            group = groups.setdefault(key, dict(params=[], lr=base_lr * scale,
                                                weight_decay=base_wd * wd_mult, lr_scale=scale,
                                                layer_id=key[2], names=[]))
            group["params"].append(param)
            group["names"].append(full)
    return list(groups.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` with the grouping of :func:`param_groups`.

    ``paramwise_cfg`` keys: ``norm_decay_mult``, ``bias_decay_mult``, ``custom_keys``
    (``{name_substring: {lr_mult, decay_mult}}``), ``layer_decay_rate`` (0 = off), optional
    ``num_layers`` (default: backbone depth + 2).
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, "module"):
            model = model.module
        groups = param_groups(model, self.base_lr, self.base_wd or 0.0, self.paramwise_cfg)
        summary = defaultdict(int)
        for g in groups:
            summary[(round(g["lr_scale"], 6), g["weight_decay"])] += sum(p.numel()
                                                                       for p in g["params"])
            del g["names"]
        lines = ", ".join(f"lr x{s:g} wd {wd:g}: {n / 1e6:.2f}M"
                          for (s, wd), n in sorted(summary.items(), reverse=True))
        print_log(f"optimizer groups ({len(groups)}): {lines}", logger="current")
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg["params"] = groups
        from mmengine.registry import OPTIMIZERS

        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault("type", "OptimWrapper")
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))


@OPTIM_WRAPPERS.register_module()
class FiniteLossOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that skips the update (no backward, no step) on a NaN/inf loss.

    ``skipped_steps`` counts the skipped updates over the run.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0

    def update_params(self, loss: torch.Tensor, step_kwargs: dict | None = None,
                      zero_kwargs: dict | None = None) -> None:
        if not torch.isfinite(loss.detach()).all():
            self.skipped_steps += 1
            self.zero_grad(**(zero_kwargs or {}))
            return
        super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
