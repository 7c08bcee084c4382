"""Optional OpenMMLab glue: register in mmdet's MODELS when mmdet is installed, else plain torch.

Why a guard: the benchmark machine has torch only (no mmengine/mmdet/mmcv), and the backbone,
adapter and weight loader are pure PyTorch. With mmdet present, ``@register_model("Name")``
puts the class into ``mmdet.registry.MODELS`` (configs then say ``type='Name'`` after
``custom_imports=dict(imports=['components.models'])``); without it, the decorator is a no-op
and :class:`BaseModule` falls back to a tiny ``nn.Module`` with the same ``init_cfg`` /
``init_weights`` surface.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from torch import nn

__all__ = ["MODELS", "BaseModule", "register_model", "get_logger"]

T = TypeVar("T")

try:
    from mmengine.model import BaseModule
except ImportError:  # torch-only environment

    class BaseModule(nn.Module):  # type: ignore[no-redef]
        """Stand-in for ``mmengine.model.BaseModule`` (keeps ``init_cfg``; recursive init)."""

        def __init__(self, init_cfg: dict | list | None = None) -> None:
            super().__init__()
            self.init_cfg = init_cfg

        def init_weights(self) -> None:
            for child in self.children():
                if hasattr(child, "init_weights"):
                    child.init_weights()

try:
    from mmdet.registry import MODELS
except ImportError:  # torch-only environment
    MODELS = None


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: ``MODELS.register_module(name=name)`` when mmdet is importable."""

    def wrap(cls: T) -> T:
        if MODELS is not None:
            MODELS.register_module(name=name, module=cls)
        return cls

    return wrap


def get_logger() -> logging.Logger:
    """mmengine's current ``MMLogger`` (so messages land in the run log) or a stdlib logger."""
    try:
        from mmengine.logging import MMLogger
    except ImportError:
        return logging.getLogger("components.models")
    return MMLogger.get_current_instance()
