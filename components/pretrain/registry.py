"""The registry of backbone pretraining methods: adding a method is one module + one registration.

A method module defines a *pretrainer* (an ``nn.Module``) and registers a factory for it::

    @register_method("mae", data="unlabeled", defaults={"mask_ratio": 0.75, ...})
    def build(cfg: PretrainConfig) -> MAEPretrainer: ...

The contract a registered factory's pretrainer satisfies (the training driver relies on nothing
else):

* ``backbone``: a :class:`components.models.vit.ViT` (``PlainViT``) built with
  :func:`components.pretrain.common.build_backbone`. Its ``state_dict`` is what the stage saves,
  so the keys are exactly the detection backbone's.
* ``make_transform() -> Callable[[PIL.Image.Image], dict[str, Tensor]]``: per-image data
  pipeline (crops, augmentations, normalisation). Tensors are batched by the default collate.
* ``forward(batch: dict[str, Tensor]) -> dict[str, Tensor]``: must contain a scalar ``"loss"``;
  other scalar entries are logged as metrics. The batch holds the registered ``inputs``
  (each ``(B, 3, S, S)`` normalised images; default ``("image",)``) plus ``"targets"`` ``(B, K)``
  for ``data="labels"`` methods.
* optional ``after_step(step: int, total_steps: int)``: called after each optimizer step (MoCo's
  momentum encoder update).

``data`` says which images the method consumes: ``"none"`` (no training, e.g. ``random``),
``"unlabeled"`` (``images/unlabeled/``) or ``"labels"`` (a labelled split with image-level labels;
the factory's pretrainer then also has ``set_label_space(names)``, see ``supervised``).
``defaults`` are the method's own options (``pretrain.<method>.*`` in params.yaml): also the
shared training keys (epochs, lr, ...) may be overridden there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from components.pretrain.config import PretrainConfig

__all__ = ["DATA_KINDS", "MethodSpec", "METHODS", "register_method", "get_method"]

DATA_KINDS = ("none", "unlabeled", "labels")


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


METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, *, data: str, defaults: dict[str, Any] | None = None,
                    summary: str = "", requires: tuple[str, ...] = (),
                    inputs: tuple[str, ...] = ("image",)) -> Callable[[Callable], Callable]:
    """Decorator registering a pretrainer factory ``build(cfg) -> nn.Module`` under ``name``."""
    if data not in DATA_KINDS:
        raise ValueError(f"method {name!r}: data must be one of {DATA_KINDS}, got {data!r}")

    def wrap(build: Callable) -> Callable:
        if name in METHODS and METHODS[name].build is not build:
            raise ValueError(f"pretraining method {name!r} is registered twice "
                             f"({METHODS[name].build.__module__} and {build.__module__})")
        METHODS[name] = MethodSpec(name, build, data, dict(defaults or {}),
                                   summary or (build.__doc__ or "").strip().split("\n")[0],
                                   tuple(requires), tuple(inputs))
        return build

    return wrap


def get_method(name: str) -> MethodSpec:
    """Look a method up by name (importing :mod:`components.pretrain` registers the built-ins)."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown pretraining method {name!r}; known: {sorted(METHODS)} "
                       "(add a module under components/pretrain/ and register it)") from None
