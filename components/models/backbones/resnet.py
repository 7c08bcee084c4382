"""ResNet (He et al., arXiv 1512.03385) as a registered backbone family: the CNN baseline.

Why mmdet's ResNet and not our own: it is the maintained reference implementation the
detection configs of the ecosystem use (stem, stages, BN, init), so we only add what the
project needs on top: weights loaded with the project's safe loader (safetensors or a
tensor-only state dict, never mmengine's pickle-based ``Pretrained`` init) and BN statistics
that train (``norm_eval=False``: every model here starts from our own, often random, weights).

Outputs: the four stages C2-C5, ``(B, C_i, H / s_i, W / s_i)`` with ``s = 4, 8, 16, 32`` and
``C = 64, 128, 256, 512`` (BasicBlock, r18/r34) or ``256, 512, 1024, 2048`` (Bottleneck,
r50/r101): already a pyramid, so no adapter sits between it and the FPN.

Registered only where mmdet is installed (the torch-only GPU box has the ViT alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from components.models.backbones.base import BACKBONES, BackboneFamily, FeatureShape
from components.models.registry import get_logger, register_model

__all__ = ["ResNetVariant", "VARIANTS", "ResNetFamily"]


@dataclass(frozen=True)
class ResNetVariant:
    depth: int
    stage_channels: tuple[int, int, int, int]


VARIANTS: dict[str, ResNetVariant] = {
    "r18": ResNetVariant(18, (64, 128, 256, 512)),
    "r34": ResNetVariant(34, (64, 128, 256, 512)),
    "r50": ResNetVariant(50, (256, 512, 1024, 2048)),
    "r101": ResNetVariant(101, (256, 512, 1024, 2048)),
}
STRIDES = (4, 8, 16, 32)

try:
    from mmdet.models.backbones import ResNet as _MMDetResNet
except ImportError:  # torch-only environment
    _MMDetResNet = None

if _MMDetResNet is not None:

    @register_model("SafeResNet")
    class SafeResNet(_MMDetResNet):
        """mmdet's ResNet whose ``pretrained`` file is read by :class:`ResNetFamily`'s loader.

        Args:
            depth: 18 | 34 | 50 | 101.
            pretrained: backbone weights (``.safetensors`` / tensor-only ``.pth``) or None
                (mmdet's Kaiming init, zero-initialised last BN of each residual block).
            **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``norm_cfg``, ...).
        """

        def __init__(self, depth: int, *, pretrained: str | None = None, **kwargs: Any) -> None:
            super().__init__(depth, **kwargs)
            self.checkpoint = pretrained

        def init_weights(self) -> None:
            if self.checkpoint:
                report = BACKBONES["resnet"].load_weights(self, self.checkpoint)
                get_logger().info(f"SafeResNet: {report}")
                self._is_init = True
            else:
                super().init_weights()

    class ResNetFamily(BackboneFamily):
        """ResNet-18/34/50/101 (``model.size`` r18 | r34 | r50 | r101), BN in training mode."""

        name = "resnet"
        variants = VARIANTS
        module = SafeResNet
        reads = ()

        def config(self, model: Mapping[str, Any]) -> dict[str, Any]:
            variant = self.variant(model.get("size", "r18"))
            checkpoint = model.get("checkpoint") or None
            return dict(type="SafeResNet", depth=variant.depth, num_stages=4,
                        out_indices=(0, 1, 2, 3), frozen_stages=-1,
                        norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False,
                        style="pytorch", pretrained=str(checkpoint) if checkpoint else None,
                        **dict(model.get("arch") or {}))  # expert: e.g. base_channels

        def output_shape(self, cfg: Mapping[str, Any]) -> dict[str, FeatureShape]:
            variant = next(v for v in VARIANTS.values() if v.depth == int(cfg["depth"]))
            indices = tuple(cfg.get("out_indices", (0, 1, 2, 3)))
            return {f"c{i + 2}": (variant.stage_channels[i], STRIDES[i]) for i in indices}

    BACKBONES.register("resnet", ResNetFamily())
