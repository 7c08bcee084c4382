"""mmdet pieces that make training and validation honour the COCO record contract
(components/validation/suites/coco_contract.md): whatever the gate accepts trains.

* ``ContractCocoDataset``: mmdet's ``CocoDataset`` gives an instance without a
  ``segmentation`` (or with ``[]``) no ``mask`` key, and ``LoadAnnotations`` then dies with
  ``KeyError: 'mask'``. Here such an instance gets an empty mask (an all-background RLE of its
  image), so its box trains like any other;
* ``MaskOptionalFCNMaskHead``: mmdet's mask head with the mask loss taken over the positive
  RoIs whose ground-truth instance HAS a mask (non-zero area): an empty mask means "unknown",
  not "background", and must not teach the head to predict nothing;
* ``ContractCocoMetric``: mmdet's ``CocoMetric`` (the val loop) scores mask-less ground truth
  the way the evaluate stage does (:mod:`components.data.scoring`): a crowd region for segm.
  pycocotools would otherwise fail to rasterise ``[]``. Its box is also scored as crowd in
  these val passes (one ground-truth file serves both); the evaluate stage scores boxes exactly.
"""
from __future__ import annotations

import numpy as np
import torch
from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import DATASETS, METRICS, MODELS

from components.data import scoring

__all__ = ["ContractCocoDataset", "MaskOptionalFCNMaskHead", "ContractCocoMetric"]


@DATASETS.register_module()
class ContractCocoDataset(CocoDataset):
    """``CocoDataset`` where every kept instance has a ``mask`` (empty when it has none)."""

    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = super().parse_data_info(raw_data_info)
        h, w = int(info["height"]), int(info["width"])
        for inst in info["instances"]:
            if "mask" not in inst:
                inst["mask"] = {"size": [h, w], "counts": [h * w]}  # all background
        return info


@MODELS.register_module()
class MaskOptionalFCNMaskHead(FCNMaskHead):
    """``FCNMaskHead`` whose loss skips RoIs assigned to a ground-truth instance without mask."""

    def loss_and_target(self, mask_preds, sampling_results, batch_gt_instances, rcnn_train_cfg):
        has = []
        for res, gt in zip(sampling_results, batch_gt_instances):
            areas = torch.as_tensor(np.asarray(gt.masks.areas, dtype=np.int64), device=mask_preds.device)
            has.append(areas[res.pos_assigned_gt_inds] > 0 if len(areas) else
                       torch.zeros(len(res.pos_assigned_gt_inds), dtype=torch.bool,
                                   device=mask_preds.device))
        keep = torch.cat(has) if has else torch.zeros(0, dtype=torch.bool)
        if mask_preds.size(0) == 0 or bool(keep.all()):
            return super().loss_and_target(mask_preds, sampling_results, batch_gt_instances,
                                           rcnn_train_cfg)
        mask_targets = self.get_targets(sampling_results=sampling_results,
                                        batch_gt_instances=batch_gt_instances,
                                        rcnn_train_cfg=rcnn_train_cfg)
        labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        if self.class_agnostic:
            labels = torch.zeros_like(labels)
        if not bool(keep.any()):
            loss_mask = mask_preds.sum() * 0.0  # keeps the graph; nothing to learn from
        else:
            loss_mask = self.loss_mask(mask_preds[keep], mask_targets[keep], labels[keep])
        return dict(loss_mask=dict(loss_mask=loss_mask), mask_targets=mask_targets)


@METRICS.register_module()
class ContractCocoMetric(CocoMetric):
    """``CocoMetric`` over ground truth where mask-less instances are crowd regions."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        api = getattr(self, "_coco_api", None)
        if api is not None:
            fixed = scoring.for_iou_type(api.dataset, "segm")
            if fixed is not api.dataset:
                api.dataset = fixed
                api.createIndex()
