"""SSDLite glue: pick the backbone maps SSD reads, and make mmdet 3.3.0's ``SSDHead`` predict.

* :class:`SelectLevels` (``'SelectLevels'``): a neck that keeps some of the backbone's maps
  (SSDLite reads strides 16 and 32; a backbone may return 4-32), so every backbone family's
  pyramid feeds ``SSDNeck`` unchanged.
* :class:`PredictableSSDHead` (``'PredictableSSDHead'``): ``SSDHead`` with the one fix it
  needs in mmdet 3.3.0. ``SSDHead.__init__`` never sets ``loss_cls`` (its loss is a hand-written
  softmax cross-entropy with hard negative mining), but ``BaseDenseHead._predict_by_feat_single``
  reads ``self.loss_cls`` and crashes predict/val with ``'SSDHead' object has no attribute
  'loss_cls'``. Upstream: open-mmlab/mmdetection issues #11063, #11305, #11780 (the fix PR was
  never merged). ``loss_cls = None`` is what the base class expects when there is no loss module
  with custom class channels. Remove this subclass when mmdet ships the fix.

Registered only where mmdet is installed.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from components.models.registry import register_model

__all__ = ["SelectLevels", "PredictableSSDHead"]


@register_model("SelectLevels")
class SelectLevels(nn.Module):
    """Neck: ``feats[i] for i in indices`` (no parameters)."""

    def __init__(self, indices: Sequence[int]) -> None:
        super().__init__()
        self.indices = [int(i) for i in indices]

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if max(self.indices) >= len(feats):
            raise ValueError(f"SelectLevels{self.indices}: the backbone returned only "
                             f"{len(feats)} maps")
        return tuple(feats[i] for i in self.indices)


try:
    from mmdet.models.dense_heads import SSDHead as _SSDHead
except ImportError:  # torch-only environment
    _SSDHead = None

if _SSDHead is not None:

    @register_model("PredictableSSDHead")
    class PredictableSSDHead(_SSDHead):
        """mmdet's ``SSDHead`` that can predict (see the module docstring)."""

        loss_cls = None  # read by BaseDenseHead._predict_by_feat_single; SSDHead never sets it
