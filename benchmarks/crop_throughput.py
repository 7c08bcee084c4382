"""Crop-pipeline throughput: object-aware crop policies vs torchvision's RandomResizedCrop.

The issue's target: an object-aware two-view pipeline must run at >= 0.9x the speed of the
usual two-view ``RandomResizedCrop`` pipeline on the same images. Both pipelines here produce
the same tensors per sample (two ``(3, S, S)`` views through the same MoCo-v2 colour/blur/flip
augmentations, normalised); they differ only in how the crop regions are chosen and cut:

* ``torchvision``: ``T.RandomResizedCrop(S, scale=(0.2, 1))`` then the view augmentations;
* each policy: :class:`components.pretrain.twoview.TwoViewDataset` (regions from
  :class:`components.pretrain.crops.CropSampler` on the images' ground-truth boxes, cut + resized
  by one ``PIL.Image.resize(box=...)``).

Images are decoded once and kept in memory by both (as the training datasets do), so the
figure is the per-sample crop + augmentation cost. Prints one JSON object::

    python benchmarks/crop_throughput.py --data data/dataset --images 200 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.pretrain.crops import POLICIES, CropParams, CropSampler  # noqa: E402
from components.pretrain.twoview import (TwoViewDataset, gt_boxes, split_images,  # noqa: E402
                                         view_transform)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/dataset", help="dataset folder (prepare stage output)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--images", type=int, default=200, help="images per round")
    ap.add_argument("--size", type=int, default=128, help="view side S")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    ap.add_argument("--out", default="", help="also write the JSON here")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    import torch
    from PIL import Image
    from torchvision import transforms as T

    args = parse_args(argv)
    torch.set_num_threads(1)
    paths, coco = split_images(Path(args.data), args.split)
    paths, boxes = paths[:args.images], gt_boxes(coco)[:args.images]
    views = (view_transform(blur_p=0.5, solarize_p=0.0, img_size=args.size),) * 2
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))

    rrc = T.RandomResizedCrop(args.size, scale=(0.2, 1.0), interpolation=T.InterpolationMode.BICUBIC)

    def torchvision_pipeline() -> None:
        for img in images:
            views[0](rrc(img))
            views[1](rrc(img))

    def policy_pipeline(policy: str):
        ds = TwoViewDataset(paths, boxes, CropSampler(CropParams(policy=policy, boxes="gt"), 0),
                            views, args.size)
        ds._cache = dict(enumerate(images))

        def run() -> None:
            for i in range(len(ds)):
                ds[i]
        return run

    fns = {"torchvision_rrc": torchvision_pipeline,
           **{p: policy_pipeline(p) for p in POLICIES}}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["torchvision_rrc"])
    out = {"images": len(images), "size": args.size, "rounds": args.rounds, "threads": 1,
           "samples_per_s": {k: round(len(images) / statistics.median(v), 1)
                             for k, v in times.items()},
           "relative_to_torchvision": {k: round(base / statistics.median(v), 3)
                                       for k, v in times.items()}}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
