"""The backbone contract: what every registered backbone family promises the rest of the code.

A *family* (plain ViT, ResNet, and later MobileViT, ...) is one file in this package holding
its ``nn.Module``, its variants as data, and one :class:`BackboneFamily` subclass registered
by name in :data:`BACKBONES`. Detection configs (Mask R-CNN, later SSDLite), pretraining
methods and the weight loader use only this contract, never a family's own fields:

* ``variants``: the model sizes (``model.size`` in params.yaml), as data;
* ``reads``: the ``model.*`` keys of params.yaml the family uses besides ``backbone``,
  ``size`` and ``checkpoint`` (documentation, and the check that a key means something);
* ``config(model) -> dict``: the mmdet backbone config (``type`` + constructor kwargs) for the
  ``model`` section of params.yaml; ``pretrained`` holds ``model.checkpoint`` (or None); an
  ``arch`` mapping in ``model`` (code only, e.g. tiny test models) overrides constructor
  arguments last;
* ``output_shape(cfg) -> {feature: (channels, stride)}``: what the built module returns,
  in order, as a tuple of ``(B, channels, H / stride, W / stride)`` maps;
* ``pyramid(cfg, model) -> (necks, shape)``: the neck modules (configs) that turn those
  outputs into a strided feature pyramid for an FPN, and that pyramid's shape. Default:
  none, the outputs already are one (CNNs); the plain ViT adds its adapter here;
* ``pretraining_config(model) -> dict``: the same backbone, set up to be pretrained at its
  pretraining size (the ViT: global attention in every block);
* ``build(cfg) -> nn.Module``: instantiate a config without any registry (torch-only boxes);
* ``pooled_features(module, imgs) -> (B, C)`` and ``embedding_dim(cfg) -> C``: one global
  embedding per image, for image-level heads (classification pretraining, later contrastive
  image-text). Default: the last output map averaged over space;
* ``load_weights(module, path)`` / ``save_weights(module, path)``: safetensors or a tensor-only
  state dict (``weights_only=True``), never pickle; the family adapts checkpoint keys/shapes.

Adding a backbone = one file with the module, its variants and a registered family, and one
import line in ``__init__.py``; ``tests/models/test_backbone_contract.py`` then sweeps it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from components.common.registry import Registry
from components.models.weights import LoadReport, load_state, save_backbone_weights, shape_error

__all__ = ["FeatureShape", "BackboneFamily", "BACKBONES", "get_backbone", "family_of",
           "single_level_anchor_scales"]

FeatureShape = tuple[int, int]  # (channels, stride)

BACKBONES: Registry["BackboneFamily"] = Registry("backbone", "components/models/backbones/")

# The five FPN levels' anchors (8 x strides 4..64 = 32..512 px at the paper's 1024 px input).
_FPN_ANCHORS = tuple(8 * s for s in (4, 8, 16, 32, 64))


def single_level_anchor_scales(stride: int) -> list[float]:
    """Anchor scales that cover the five FPN levels' sizes from ONE level of ``stride``
    (the paper's no-FPN row: 2, 4, 8, 16, 32 at stride 16)."""
    return [size / stride for size in _FPN_ANCHORS]


class BackboneFamily(ABC):
    """One registered backbone family (see the module docstring for the contract)."""

    name: ClassVar[str]
    variants: ClassVar[Mapping[str, Any]]
    reads: ClassVar[tuple[str, ...]] = ()
    module: ClassVar[type[nn.Module]]

    def variant(self, size: str) -> Any:
        """The variant ``size`` (``model.size``), or a KeyError listing the known ones."""
        try:
            return self.variants[size]
        except (KeyError, TypeError):
            raise KeyError(f"model.size {size!r} is not a {self.name} variant; known: "
                           f"{list(self.variants)} (model.backbone: {self.name})") from None

    @abstractmethod
    def config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """mmdet backbone config for the params.yaml ``model`` section."""

    @abstractmethod
    def output_shape(self, cfg: Mapping[str, Any]) -> dict[str, FeatureShape]:
        """``{feature: (channels, stride)}`` of the module ``cfg`` builds, in output order."""

    def pyramid(self, cfg: Mapping[str, Any], model: Mapping[str, Any]
                ) -> tuple[list[dict[str, Any]], dict[str, FeatureShape]]:
        """Necks before the FPN and the pyramid they produce; default: the outputs as they are."""
        return [], self.output_shape(cfg)

    def pretraining_config(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """Config of the backbone as pretraining builds it; default: as detection builds it."""
        return self.config(model)

    def build(self, cfg: Mapping[str, Any]) -> nn.Module:
        """The module for ``cfg`` (its ``type`` must be this family's), without a registry."""
        kwargs = dict(cfg)
        kind = kwargs.pop("type", None)
        if kind not in (None, self.config_type):
            raise ValueError(f"backbone config type {kind!r} is not {self.name}'s "
                             f"{self.config_type!r}")
        return self.module(**kwargs)

    def embedding_dim(self, cfg: Mapping[str, Any]) -> int:
        """Channels of :meth:`pooled_features` (default: the last output's)."""
        return int(list(self.output_shape(cfg).values())[-1][0])

    def pooled_features(self, module: nn.Module, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C)``: the last output map, averaged over space."""
        return module(imgs)[-1].mean(dim=(2, 3))

    @property
    def config_type(self) -> str:
        """The ``type`` name the family's module is registered under in mmdet."""
        return self.module.__name__

    # -- weights
    def prepare_checkpoint(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename checkpoint keys to the module's (default: unchanged)."""
        return state

    def fit_tensor(self, key: str, value: torch.Tensor, want: torch.Size,
                   state: dict[str, torch.Tensor]) -> torch.Tensor:
        """The tensor to load for ``key`` (default: only an exact shape; else ValueError)."""
        if value.shape != want:
            raise shape_error(key, value.shape, want)
        return value

    def load_weights(self, module: nn.Module, path: str | Path, *,
                     strict_shapes: bool = True) -> LoadReport:
        """Load ``path`` into ``module`` safely; the report lists what did not match."""
        return load_state(module, path, prepare=self.prepare_checkpoint, fit=self.fit_tensor,
                          strict_shapes=strict_shapes)

    def save_weights(self, module: nn.Module, path: str | Path) -> Path:
        """Write ``module``'s state dict as ``.safetensors`` (atomically)."""
        return save_backbone_weights(module, path)


def get_backbone(name: str) -> BackboneFamily:
    """The family registered as ``name`` (``model.backbone``)."""
    return BACKBONES.get(name)


def family_of(module: nn.Module) -> BackboneFamily:
    """The registered family whose module class ``module`` is an instance of."""
    for family in BACKBONES.values():
        if isinstance(module, family.module):
            return family
    raise KeyError(f"{type(module).__name__} belongs to no registered backbone family; known: "
                   f"{list(BACKBONES)}")
