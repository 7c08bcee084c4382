"""Why does (or doesn't) the detector learn? The targets it trains on, measured on real batches.

For the params' dataset and detector config (optionally with trained weights), prints JSON:

* data: images, objects per image, class balance, ground-truth box sides (sqrt of area,
  percentiles, pixels at the training size);
* RPN targets on ``--batches`` real training batches (the LSJ pipeline): anchors per level,
  positive anchors per image (IoU >= 0.7, or the best anchor of each box) before and after the
  sampler's cap, and on which pyramid level the positives sit;
* RoI-head targets: which pyramid level each ground-truth box is pooled from
  (``finest_scale``) and how many feature cells it covers there, and positive RoIs per image
  among the model's own proposals (IoU >= 0.5, ground truth added as proposals).

A detector learns slowly when boxes get few positives or are pooled from a level where they
cover only a cell or two (a 7x7 RoIAlign over a 2x2 patch): both show here.

    python benchmarks/detection_diagnostics.py --params params.yaml [--set k=v] [--weights
        runs/finetune/final/model.safetensors] [--batches 20]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _pct(values, qs=(5, 25, 50, 75, 95)) -> dict[str, float]:
    if not len(values):
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 1) for q in qs}


def data_stats(ann_file: Path, img_size: int) -> dict:
    coco = json.loads(ann_file.read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    inst = [a for a in coco["annotations"] if not a.get("iscrowd")]
    per_image = Counter(a["image_id"] for a in inst)
    side = {im["id"]: max(im["width"], im["height"]) for im in coco["images"]}
    sides = [math.sqrt(a["bbox"][2] * a["bbox"][3]) * img_size / side[a["image_id"]] for a in inst]
    return {
        "images": len(coco["images"]), "instances": len(inst),
        "objects_per_image": _pct([per_image.get(im["id"], 0) for im in coco["images"]]),
        "class_counts": dict(Counter(names[a["category_id"]] for a in inst)),
        "box_side_px_at_train_size": _pct(sides),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--weights", help="detector weights (model.safetensors) for the RoI proposals")
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args(argv)

    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData

    from components.common.params import load_params, parse_override
    from components.data import layout
    from components.train.config import build_config, resolve_path

    params = load_params(args.params, dict(parse_override(s) for s in args.set))
    cfg = build_config(params)
    init_default_scope("mmdet")
    img = int(params["finetune"]["img_size"])
    out: dict = {"data": data_stats(layout.coco_json(resolve_path(params["data"]["out"]), "train"), img)}

    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.weights:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(args.weights), strict=True)
    model.eval()
    rpn, roi = model.rpn_head, model.roi_head
    strides = [int(s[0]) for s in rpn.prior_generator.strides]
    finest = roi.bbox_roi_extractor.finest_scale
    roi_strides = list(roi.bbox_roi_extractor.featmap_strides)
    anchor_sizes = [float(s) * float(rpn.prior_generator.scales[0]) for s in strides]
    out["geometry"] = {"anchor_strides": strides, "anchor_sizes_px": anchor_sizes,
                       "anchor_scales": [float(s) for s in rpn.prior_generator.scales],
                       "roi_finest_scale": finest, "roi_strides": roi_strides}

    loader = Runner.build_dataloader(cfg.train_dataloader)
    rpn_pos, rpn_sampled, roi_pos, roi_sampled = [], [], [], []
    level_pos, roi_levels, cells = Counter(), Counter(), []
    rpn_cap = int(cfg.model.train_cfg.rpn.sampler.num * cfg.model.train_cfg.rpn.sampler.pos_fraction)
    rcnn = cfg.model.train_cfg.rcnn.sampler
    roi_cap = int(rcnn.num * rcnn.pos_fraction)
    with torch.no_grad():
        for b, batch in enumerate(loader):
            if b >= args.batches:
                break
            data = model.data_preprocessor(batch, True)
            feats = model.extract_feat(data["inputs"])
            samples = data["data_samples"]
            metas = [s.metainfo for s in samples]
            sizes = [f.shape[-2:] for f in feats[:len(strides)]]
            anchors, _ = rpn.get_anchors(sizes, metas, device="cpu")
            proposals = rpn.predict(feats, samples, rescale=False)
            for i, s in enumerate(samples):
                gt = s.gt_instances
                if len(gt) == 0:
                    continue
                per_level = [len(a) for a in anchors[i]]
                res = rpn.assigner.assign(InstanceData(priors=torch.cat(anchors[i])), gt)
                pos = torch.nonzero(res.gt_inds > 0).flatten()
                rpn_pos.append(len(pos))
                rpn_sampled.append(min(len(pos), rpn_cap))
                bounds = np.cumsum([0] + per_level)
                for p in pos.tolist():
                    level_pos[strides[int(np.searchsorted(bounds, p, side="right")) - 1]] += 1
                boxes = gt.bboxes.tensor if hasattr(gt.bboxes, "tensor") else gt.bboxes
                side = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
                lvls = torch.floor(torch.log2(side / finest + 1e-6)).clamp(0, len(roi_strides) - 1).long()
                for sd, lv in zip(side.tolist(), lvls.tolist()):
                    roi_levels[roi_strides[lv]] += 1
                    cells.append(sd / roi_strides[lv])
                prop = proposals[i]
                priors = torch.cat([prop.bboxes, boxes])  # ground truth added as proposals
                res = roi.bbox_assigner.assign(InstanceData(priors=priors), gt)
                n = int((res.gt_inds > 0).sum())
                roi_pos.append(n)
                roi_sampled.append(min(n, roi_cap))
    images = len(rpn_pos)
    out["rpn"] = {
        "images": images, "anchors_per_level": dict(zip(strides, per_level)),
        "positive_anchors_per_image": _pct(rpn_pos), "mean_positive": round(float(np.mean(rpn_pos)), 1),
        "sampled_positive_per_image_mean": round(float(np.mean(rpn_sampled)), 1),
        "sampler_cap": rpn_cap,
        "positives_by_stride": {k: level_pos[k] for k in sorted(level_pos)},
    }
    out["roi"] = {
        "gt_boxes_by_pooled_stride": {k: roi_levels[k] for k in sorted(roi_levels)},
        "cells_covered_by_a_box_on_its_level": _pct(cells),
        "positive_rois_per_image": _pct(roi_pos),
        "sampled_positive_per_image_mean": round(float(np.mean(roi_sampled)), 1),
        "sampler_cap": roi_cap,
        "weights": args.weights or "untrained (random init)",
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
