"""BING proposals on one core at 500x375 (the paper's VOC image size): images/s and DR@k.

Trains BING (``components.proposals``, default params) on the built-in synthetic scenes resized
to --width x --height (boxes scaled with them), so the sizes the model keeps are those objects
have at that resolution; or loads --model. Then times ``BingModel.propose(image, --top-k)`` on
--images val images already decoded and resized (decode and resize excluded: the figure is the
proposal computation), --rounds times (median and best pass), OpenCV and OMP on one thread.
Also reported: the same timing with every size that fits switched on (the worst case: a model
that drops no size), and DR@10/100/1000 of BING and of as many random boxes.

    python benchmarks/bing_speed.py                         # ~20 s: generate 500+100 scenes, train, time
    python benchmarks/bing_speed.py --out benchmarks/results/bing_speed.json
    python benchmarks/bing_speed.py --data data/dataset --model pretrained/bing/model.json

Needs numpy, OpenCV and this repo's components (no torch, MLflow or matplotlib).
Prints one JSON object on stdout (and --out FILE).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/cv2 load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.common.params import parse_override  # noqa: E402
from components.proposals.bing import BingModel, load_model, train_bing  # noqa: E402
from components.proposals.config import PROPOSAL_DEFAULTS, model_kwargs  # noqa: E402
from components.proposals.data import read_image, read_split  # noqa: E402
from components.proposals.recall import evaluate_recall  # noqa: E402


def _resized(records, width: int, height: int) -> tuple[list, list, list]:
    """(images, object boxes, crowd boxes) of ``records`` resized to ``width x height``."""
    images, boxes, crowd = [], [], []
    for rec in records:
        img, _ = read_image(rec.path)
        scale = np.array([width / img.shape[1], height / img.shape[0]] * 2)
        images.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR))
        boxes.append(rec.boxes * scale)
        crowd.append(rec.crowd * scale)
    return images, boxes, crowd


def _dataset(args: argparse.Namespace, tmp: Path) -> Path:
    if args.data:
        return Path(args.data)
    from components.data.synthetic import generate, resolve_config

    cfg = resolve_config({"preset": "easy", "num_images": {
        "train": 0 if args.model else args.train_images, "val": args.images, "test": 0,
        "unlabeled": 0}})
    generate(tmp / "ds", cfg, seed=args.seed, workers=1)
    return tmp / "ds"


def _time(model: BingModel, images: list[np.ndarray], top_k: int, rounds: int
          ) -> dict[str, float]:
    """Images/s over ``rounds`` passes (after a short warm-up): the median and best pass by wall
    clock, and by this process's CPU time (on a shared machine the wall clock also counts the
    time other jobs held the core; one thread, so CPU time is the one-core cost)."""
    for img in images[:5]:
        model.propose(img, top_k)
    wall, cpu = [], []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        for img in images:
            model.propose(img, top_k)
        wall.append((time.perf_counter() - w0) / len(images))
        cpu.append((time.process_time() - c0) / len(images))
    med = statistics.median(wall)
    return {"img_per_s": round(1 / med, 1), "ms_per_img": round(med * 1000, 3),
            "img_per_s_best_round": round(1 / min(wall), 1),
            "img_per_s_cpu_time": round(1 / statistics.median(cpu), 1)}


def _every_size(model: BingModel) -> BingModel:
    """``model`` with every size active (dropped ones scored raw): timing only."""
    calib = np.where(model.active[:, None], model.calib, np.float32([1.0, 0.0]))
    return BingModel(sizes=model.sizes, w=model.w, calib=calib, active=np.ones_like(model.active),
                     nms_radius=model.nms_radius, per_size=model.per_size,
                     fill_radius=model.fill_radius)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="dataset folder (components/data/layout.py); default: generate "
                                   "the easy preset's scenes into a temp folder")
    ap.add_argument("--model", help="a trained model.json (default: train one here)")
    ap.add_argument("--train-images", type=int, default=int(PROPOSAL_DEFAULTS["max_train_images"]))
    ap.add_argument("--images", type=int, default=100, help="val images timed and scored")
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--top-k", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5, help="timed passes (median and best)")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: one core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="a proposals.* training value, e.g. nms_radius=1 "
                                              "(repeatable; default: PROPOSAL_DEFAULTS)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    cfg = dict(PROPOSAL_DEFAULTS)
    for text in args.overrides:
        key, value = parse_override(text)
        if key.removeprefix("proposals.") not in cfg:
            ap.error(f"--set {text}: unknown key; known: {sorted(cfg)}")
        cfg[key.removeprefix("proposals.")] = value
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(args, Path(tmp))
        val_imgs, val_boxes, _ = _resized(read_split(root, "val", args.images), args.width, args.height)
        train_s = None
        if args.model:
            model = load_model(args.model)
        else:
            records = read_split(root, "train", args.train_images)
            imgs, boxes, crowd = _resized(records, args.width, args.height)
            start = time.perf_counter()
            model = train_bing(imgs, boxes, ignore_boxes=crowd, seed=args.seed,
                               **model_kwargs(cfg))
            train_s = time.perf_counter() - start
    ev = evaluate_recall(model, val_imgs, val_boxes, seed=args.seed)
    kept = _time(model, val_imgs, args.top_k, args.rounds)
    every = _time(_every_size(model), val_imgs, args.top_k, args.rounds)
    fits = sum(1 for w, h in model.pairs if w <= args.width and h <= args.height)
    report = {
        "bench": "bing_speed", "image": f"{args.width}x{args.height}", "images": len(val_imgs),
        "data": args.data or f"generated: easy preset, seed {args.seed}",
        "top_k": args.top_k, "threads": args.threads,
        **kept, "sizes_kept": len(model.active_pairs), "sizes_fitting": fits,
        **{f"{k}_every_size": v for k, v in every.items()},
        "dr": {name: {str(k): round(v, 4) for k, v in table.items()}
               for name, table in ev["dr"].items()},
        "boxes": ev["boxes"], "train_images": None if args.model else args.train_images,
        "train_s": None if train_s is None else round(train_s, 2),
        "model": args.model or "trained here (PROPOSAL_DEFAULTS)", "overrides": args.overrides,
        "version": model.version,
        "sizes": list(model.sizes), "nms_radius": model.nms_radius, "per_size": model.per_size,
        "fill_radius": model.fill_radius,
        "opencv": cv2.__version__, "numpy": np.__version__,
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
