"""Throughput of the validation gate on a synthetic COCO set (default 5,000 images / 50,000
polygon annotations, 64x64 JPEGs).

Goal: < 30 s for everything except the full image decode (GX tabular part + JSON flattening +
image header checks) on the 2-core dev machine.

    python benchmarks/validation_throughput.py              # builds the set once, then reuses it
    python benchmarks/validation_throughput.py --no-decode      # header checks only

Prints a per-phase table to stderr and one JSON object to stdout.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.common.env import apply_defaults  # noqa: E402

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"


def build(root: Path, n_images: int, n_anns: int, size: int, seed: int = 0) -> None:
    """Minimal COCO set: tiny noise JPEGs (a few encodings reused) + polygon annotations."""
    rng = np.random.default_rng(seed)
    img_dir = root / "images" / "train"
    img_dir.mkdir(parents=True)
    blobs = []
    for _ in range(16):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    images = []
    for i in range(n_images):
        name = f"train/{i:06d}.jpg"
        (root / "images" / name).write_bytes(blobs[i % len(blobs)])
        images.append({"id": i, "file_name": name, "width": size, "height": size})

    # boxes inside the image; polygon = an 8-point ring inscribed in the box
    x = rng.uniform(0, size * 0.6, n_anns)
    y = rng.uniform(0, size * 0.6, n_anns)
    w = rng.uniform(2, size * 0.4, n_anns)
    h = rng.uniform(2, size * 0.4, n_anns)
    t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    anns = []
    for k in range(n_anns):
        px = x[k] + w[k] / 2 * (1 + np.cos(t))
        py = y[k] + h[k] / 2 * (1 + np.sin(t))
        ring = np.round(np.stack([px, py], 1).ravel(), 2).tolist()
        anns.append({"id": k + 1, "image_id": int(k % n_images), "category_id": int(k % 10) + 1,
                     "bbox": [round(x[k], 2), round(y[k], 2), round(w[k], 2), round(h[k], 2)],
                     "area": round(float(w[k] * h[k] * 0.7), 2), "iscrowd": 0,
                     "segmentation": [ring]})
    cats = [{"id": c, "name": f"class{c}", "supercategory": "shape"} for c in range(1, 11)]
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--annotations", type=int, default=50000)
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"where the synthetic set is kept between runs (default {DEFAULT_CACHE})")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached set")
    p.add_argument("--no-decode", action="store_true", help="skip the full-decode pass")
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: auto)")
    p.add_argument("--progress", action="store_true", help="show tqdm bars")
    args = p.parse_args(argv)
    apply_defaults()

    root = args.cache_dir / f"validation-coco-{args.images}x{args.annotations}-{args.size}px"
    stamp = root / ".complete"
    t0 = time.perf_counter()
    if args.rebuild or not stamp.exists():
        shutil.rmtree(root, ignore_errors=True)
        build(root, args.images, args.annotations, args.size)
        stamp.write_text("ok\n")
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    from components.validation.gate import validate_dataset
    from components.validation.runner import gx_datasource
    gx_datasource()
    import_s = time.perf_counter() - t0

    cfg = {"max_pixels": 40_000_000, "caption_length": [3, 1000],
           "decode_images": not args.no_decode}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = validate_dataset(root, cfg, Path(out), progress=args.progress, suites=["coco"],
                                  workers=args.workers)
        wall = time.perf_counter() - t0
    sec = result.summary["seconds"]
    report = {
        "images": args.images, "annotations": args.annotations, "size": args.size,
        "success": result.success, "failures": len(result.failures),
        "rows": result.summary["suites"]["coco"]["rows"],
        "expectations": result.summary["suites"]["coco"]["evaluated"],
        "build_or_reuse_s": round(build_s, 2),
        "gx_import_s": round(import_s, 2),
        "flatten_s": sec["flatten"],
        "gx_validate_s": sec["gx"],
        "tabular_s": round(sec["flatten"] + sec["gx"], 3),
        "image_header_s": sec["image_header"],
        "image_decode_s": sec["image_decode"],
        "total_s": round(wall, 3),
        "total_excluding_decode_s": round(wall - sec["image_decode"], 3),
        "total_excluding_decode_with_import_s": round(wall - sec["image_decode"] + import_s, 3),
        "goal_excluding_decode_s": 30,
    }
    report["meets_goal"] = report["total_excluding_decode_with_import_s"] < 30
    print(f"{'phase':<34}{'seconds':>10}", file=sys.stderr)
    for key, label in (("gx_import_s", "GX import (once per process)"),
                       ("flatten_s", "JSON load + flatten + numpy checks"),
                       ("gx_validate_s", "GX validation (3 tables)"),
                       ("image_header_s", "image header checks"),
                       ("image_decode_s", "image full decode"),
                       ("total_excluding_decode_s", "total excluding decode"),
                       ("total_excluding_decode_with_import_s", "  + GX import"),
                       ("total_s", "total")):
        print(f"{label:<34}{report[key]:>10.2f}", file=sys.stderr)
    if not result.success:
        print("unexpected failures:", *map(str, result.failures[:5]), sep="\n  ", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
