"""Mobile backbones through timm: MobileViT (Mehta & Rastegari, arXiv 2110.02178) XXS/XS/S and
its CNN baseline MobileNetV2 (Sandler et al., arXiv 1801.04381), as two registered families.

Why timm and not our own: timm 1.0 implements both as the paper specifies them (layer table,
expansion factors, patch size 2x2, L = 2/4/3 transformer blocks at d = 64/80/96 for XXS) and
``features_only`` returns the stage outputs at strides 2, 4, 8, 16, 32. We add only what the
project needs: a registered module whose ``pretrained`` file is read by the project's safe
loader (safetensors or a tensor-only state dict, never timm's own hub download), the variants
as data (channels per stride, the paper's parameter count), and the contract.

The MobileViT block (timm ``MobileVitBlock``), as the paper builds it, for an input
``X (B, C, H, W)`` and patch ``h x w`` (2 x 2):

1. local representation: an ``n x n`` conv (3 x 3) then a 1 x 1 projection to ``d`` channels;
2. **unfold** into ``N = HW / (hw)`` non-overlapping patches: ``(B * hw, N, d)``: one token
   sequence per position *inside* a patch, over all patches;
3. ``L`` transformer blocks across the ``N`` patches (global: every patch sees every patch);
4. **fold** back to ``(B, d, H, W)`` (the exact inverse of step 2), 1 x 1 projection to ``C``;
5. concatenate with the input ``X`` and fuse with an ``n x n`` conv to ``C`` channels.

Step 1 mixes each pixel with its ``n x n`` neighbourhood, which covers all ``h x w`` positions
of its patch; step 3 then mixes that position across every patch. So one block already has an
effective receptive field of the whole ``H x W`` input, while keeping the spatial order
(conv-like inductive bias) that ViT's flattening loses. ``tests/models/backbones/
test_mobile_backbones.py`` checks both: fold(unfold(x)) == x, and that every output pixel has
a non-zero gradient w.r.t. every input pixel.

Outputs: the stage maps at the requested strides (``out_strides``, default 4, 8, 16, 32),
``(B, C_s, H / s, W / s)``; channels per stride are in :data:`MOBILEVIT_VARIANTS` /
:data:`MOBILENETV2_VARIANTS`. Pure PyTorch + timm: importable on the torch-only GPU box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import torch

from components.models.backbones.base import BACKBONES, BackboneFamily, FeatureShape
from components.models.registry import BaseModule, get_logger, register_model

__all__ = ["MobileVariant", "MOBILEVIT_VARIANTS", "MOBILENETV2_VARIANTS", "STRIDES",
           "TimmFeatures", "MobileViTBackbone", "MobileNetV2Backbone", "MobileFamily",
           "classification_param_count"]

STRIDES = (2, 4, 8, 16, 32)  # timm features_only levels 0..4
DEFAULT_OUT_STRIDES = (4, 8, 16, 32)


@dataclass(frozen=True)
class MobileVariant:
    """One model size: the timm name, channels at strides 2..32, the paper's parameter count
    of the ImageNet classification model (millions; None when the paper gives none)."""

    timm_name: str
    channels: tuple[int, int, int, int, int]
    paper_params_m: float | None = None


# MobileViT paper, Table 1 / Figure 1 (classification models, 1000 classes): 1.3M / 2.3M / 5.6M.
MOBILEVIT_VARIANTS: dict[str, MobileVariant] = {
    "xxs": MobileVariant("mobilevit_xxs", (16, 24, 48, 64, 320), 1.3),
    "xs": MobileVariant("mobilevit_xs", (32, 48, 64, 80, 384), 2.3),
    "s": MobileVariant("mobilevit_s", (32, 64, 96, 128, 640), 5.6),
}
# MobileNetV2 paper, Table 4 (width 1.0: 3.4M); the MobileViT paper's CNN baseline.
MOBILENETV2_VARIANTS: dict[str, MobileVariant] = {
    "1.0": MobileVariant("mobilenetv2_100", (16, 24, 32, 96, 320), 3.4),
    "0.5": MobileVariant("mobilenetv2_050", (8, 16, 16, 48, 160), None),
}


def _timm():
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a project dependency
        raise ImportError("the mobilevit / mobilenetv2 backbones need timm (pip install timm); "
                          "`make setup` installs it") from exc
    return timm


def classification_param_count(variant: MobileVariant, num_classes: int = 1000) -> int:
    """Parameters of timm's classification model for ``variant`` (the paper's model size)."""
    model = _timm().create_model(variant.timm_name, pretrained=False, num_classes=num_classes)
    return sum(p.numel() for p in model.parameters())


class TimmFeatures(BaseModule):
    """A timm model with ``features_only=True``: image -> tuple of stage maps.

    Args:
        model_name: timm model name (``mobilevit_xxs``, ``mobilenetv2_100``, ...).
        out_strides: strides of the returned maps, ascending, from :data:`STRIDES`.
        pretrained: backbone weights (``.safetensors`` / tensor-only ``.pth``) written by
            :meth:`BackboneFamily.save_weights`, or None (timm's own random init). Never a
            download: timm is always called with ``pretrained=False``.
        drop_path_rate: stochastic depth in the transformer / inverted-residual blocks.
    """

    family_name: ClassVar[str] = ""

    def __init__(self, model_name: str, out_strides: Sequence[int] = DEFAULT_OUT_STRIDES,
                 pretrained: str | None = None, drop_path_rate: float = 0.0,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        strides = tuple(int(s) for s in out_strides)
        if not strides or any(s not in STRIDES for s in strides) or list(strides) != sorted(strides):
            raise ValueError(f"out_strides {list(out_strides)}: pick ascending strides from "
                             f"{list(STRIDES)}")
        self.model_name = model_name
        self.out_strides = strides
        self.checkpoint = pretrained
        self.body = _timm().create_model(
            model_name, pretrained=False, features_only=True,
            out_indices=tuple(STRIDES.index(s) for s in strides), drop_path_rate=drop_path_rate)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.body(x))

    def init_weights(self) -> None:
        if self.checkpoint:
            report = BACKBONES[self.family_name].load_weights(self, self.checkpoint)
            get_logger().info(f"{type(self).__name__}: {report}")
            self._is_init = True
        # else: keep timm's initialisation (done in create_model); mmengine's generic init
        # would overwrite it with its defaults


@register_model("MobileViTBackbone")
class MobileViTBackbone(TimmFeatures):
    """MobileViT XXS/XS/S feature maps (see the module docstring for the block)."""

    family_name = "mobilevit"


@register_model("MobileNetV2Backbone")
class MobileNetV2Backbone(TimmFeatures):
    """MobileNetV2 feature maps (inverted residuals + linear bottlenecks), the CNN baseline."""

    family_name = "mobilenetv2"


class MobileFamily(BackboneFamily):
    """A timm mobile family: ``model.size`` picks a variant; reads ``out_strides`` (which
    stage maps the detector gets, default 4-32: an FPN; SSDLite asks for 16 and 32) and
    ``drop_path``. BN stays in training mode (every model here starts from our own weights)."""

    reads = ("out_strides", "drop_path")
    default_size: ClassVar[str]

    def config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        variant = self.variant(str(model.get("size", self.default_size)))
        checkpoint = model.get("checkpoint") or None
        return dict(type=self.config_type, model_name=variant.timm_name,
                    out_strides=list(model.get("out_strides") or DEFAULT_OUT_STRIDES),
                    pretrained=str(checkpoint) if checkpoint else None,
                    drop_path_rate=float(model.get("drop_path", 0.0)),
                    **dict(model.get("arch") or {}))

    def pretraining_config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """All stage maps down to stride 32 (classification pools the last one); no weights."""
        cfg = self.config(model)
        cfg.update(pretrained=None, out_strides=list(DEFAULT_OUT_STRIDES))
        return cfg

    def output_shape(self, cfg: Mapping[str, Any]) -> dict[str, FeatureShape]:
        variant = next((v for v in self.variants.values() if v.timm_name == cfg["model_name"]),
                       None)
        if variant is None:
            raise KeyError(f"{cfg['model_name']!r} is no {self.name} variant; known: "
                           f"{[v.timm_name for v in self.variants.values()]}")
        strides = tuple(cfg.get("out_strides") or DEFAULT_OUT_STRIDES)
        return {f"s{s}": (variant.channels[STRIDES.index(s)], s) for s in strides}


class MobileViTFamily(MobileFamily):
    """MobileViT-XXS / XS / S (``model.size`` xxs | xs | s)."""

    name = "mobilevit"
    variants = MOBILEVIT_VARIANTS
    module = MobileViTBackbone
    default_size = "xxs"


class MobileNetV2Family(MobileFamily):
    """MobileNetV2 at width 1.0 or 0.5 (``model.size`` "1.0" | "0.5")."""

    name = "mobilenetv2"
    variants = MOBILENETV2_VARIANTS
    module = MobileNetV2Backbone
    default_size = "1.0"


BACKBONES.register("mobilevit", MobileViTFamily())
BACKBONES.register("mobilenetv2", MobileNetV2Family())
