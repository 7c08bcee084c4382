"""The registry of backbone pretraining methods: adding a method is one module + one registration.

A method module defines a *pretrainer* (an ``nn.Module``) and registers a factory for it::

    @register_method("mae", data="unlabeled", defaults={"mask_ratio": 0.75, ...})
    def build(cfg: PretrainConfig) -> MAEPretrainer: ...

The contract a registered factory's pretrainer satisfies (the training driver relies on nothing
else):

* ``backbone``: the detection backbone built through the backbone contract with
  :func:`components.pretrain.common.build_backbone` (a :class:`components.models.backbones.vit.ViT`
  for the token-based methods). Its ``state_dict`` is what the stage saves, so the keys are
  exactly the detection backbone's.
* ``make_transform() -> Callable[[PIL.Image.Image], dict[str, Tensor]]``: per-image data
  pipeline (crops, augmentations, normalisation). Tensors are batched by the default collate.
* ``forward(batch: dict[str, Tensor]) -> dict[str, Tensor]``: must contain a scalar ``"loss"``;
  other scalar entries are logged as metrics. The batch holds the registered ``inputs``
  (each ``(B, 3, S, S)`` normalised images; default ``("image",)``) plus ``"targets"`` ``(B, K)``
  for ``data="labels"`` methods.
* optional ``after_step(step: int, total_steps: int)``: called after each optimizer step (MoCo's
  momentum encoder update).
* optional ``save_extra(folder: Path)``: writes what the method keeps beside the backbone (an
  image-text method's text tower and tokenizer) into the stage's output folder.

``data`` says which images the method consumes: ``"none"`` (no training, e.g. ``random``),
``"unlabeled"`` (``images/unlabeled/``), ``"labels"`` (a labelled split with image-level labels;
the factory's pretrainer then also has ``set_label_space(names)``, see ``supervised``) or
``"custom"``: the pretrainer reads its own samples through ``make_dataset(cfg) -> (Dataset,
image paths)`` (boxes or proposals per image for object-aware crops, captions for image-text
methods); the paths are what ``meta.json`` hashes.
``defaults`` are the method's own options (``pretrain.<method>.*`` in params.yaml): also the
shared training keys (epochs, lr, ...) may be overridden there. ``backbones`` names the
backbone families (``model.backbone``) the method works with (None: any registered family);
the stage refuses another one before it starts, naming both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

from components.common.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from components.pretrain.config import PretrainConfig

__all__ = ["DATA_KINDS", "MethodSpec", "METHODS", "register_method", "get_method"]

DATA_KINDS = ("none", "unlabeled", "labels", "custom")


@dataclass(frozen=True)
class MethodSpec:
    """A registered pretraining method (see the module docstring for the pretrainer contract)."""

    name: str
    build: Callable[["PretrainConfig"], nn.Module]
    data: str
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    requires: tuple[str, ...] = ()   # option names holding files produced by another stage
    inputs: tuple[str, ...] = ("image",)  # image tensors the transform yields per sample
    backbones: tuple[str, ...] | None = ("vit",)  # families it can pretrain; None = any

    def check_backbone(self, family: str) -> None:
        """ValueError when the method cannot pretrain ``family`` (``model.backbone``)."""
        if self.backbones is not None and family not in self.backbones:
            raise ValueError(f"pretraining method {self.name!r} works on backbones "
                             f"{list(self.backbones)}, not model.backbone={family!r}")


METHODS: Registry[MethodSpec] = Registry("pretraining method",
                                         "components/pretrain/<method>.py + register_method")


def register_method(name: str, *, data: str, defaults: dict[str, Any] | None = None,
                    summary: str = "", requires: tuple[str, ...] = (),
                    inputs: tuple[str, ...] = ("image",),
                    backbones: tuple[str, ...] | None = ("vit",)) -> Callable[[Callable], Callable]:
    """Decorator registering a pretrainer factory ``build(cfg) -> nn.Module`` under ``name``."""
    if data not in DATA_KINDS:
        raise ValueError(f"method {name!r}: data must be one of {DATA_KINDS}, got {data!r}")

    def wrap(build: Callable) -> Callable:
        METHODS.register(name, MethodSpec(
            name, build, data, dict(defaults or {}),
            summary or (build.__doc__ or "").strip().split("\n")[0], tuple(requires),
            tuple(inputs), None if backbones is None else tuple(backbones)), source=build)
        return build

    return wrap


def get_method(name: str) -> MethodSpec:
    """Look a method up by name (importing :mod:`components.pretrain` registers the built-ins)."""
    return METHODS.get(name)
