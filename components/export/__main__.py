"""``python -m components.export --model models:/vitdet-ssdlite@champion --out exports/ssdlite.onnx``

Exports the registered model's network to ONNX, then checks it against PyTorch on images of
the built-in test split (raw outputs and decoded detections) and times both runtimes. Writes
``<out>`` and ``<out>.json`` (the report); exit 1 when the outputs disagree beyond --atol.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.common.env import apply_defaults


def _test_images(params_path: str, count: int) -> list[Path]:
    from components.common.params import load_params
    from components.data import layout
    from components.train.config import resolve_path

    params = load_params(params_path)
    root = resolve_path(params["data"]["out"])
    coco = json.loads(layout.coco_json(root, params["evaluate"]["split"]).read_text())
    images = [layout.images_dir(root) / im["file_name"] for im in coco["images"][:count]]
    if not images:
        raise SystemExit(f"{root}: no {params['evaluate']['split']} images; run `make run` "
                         "(or `dvc repro prepare`) first")
    return images


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    ap = argparse.ArgumentParser(prog="python -m components.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models:/vitdet-ssdlite@champion",
                    help="MLflow model URI (default: the SSDLite champion)")
    ap.add_argument("--out", default="exports/vitdet-ssdlite.onnx", help="ONNX file to write")
    ap.add_argument("--params", default="params.yaml", help="params (data.out: test images)")
    ap.add_argument("--size", type=int, default=0, help="input side (default: the model's)")
    ap.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17)")
    ap.add_argument("--images", type=int, default=8, help="test images to compare on")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per runtime")
    ap.add_argument("--atol", type=float, default=1e-3,
                    help="largest raw-output difference accepted")
    args = ap.parse_args(argv)

    from components.export.onnx import export_onnx, load_champion, test_size, verify_onnx

    try:
        detector, cfg = load_champion(args.model)
    except Exception as exc:  # noqa: BLE001 (MLflow raises many kinds; the hint is the same)
        print(f"cannot load {args.model}: {str(exc).splitlines()[0][:300]}. Register one "
              "first: `make run` with model.detector: ssdlite", file=sys.stderr)
        return 2
    size = args.size or test_size(cfg)
    out = export_onnx(detector, args.out, size, opset=args.opset)
    report = verify_onnx(detector, out, _test_images(args.params, args.images), size,
                         runs=args.runs).to_dict()
    report["model_uri"] = args.model
    report["ok"] = report["max_abs_diff"] <= args.atol and report["same_labels"]
    Path(f"{out}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        print(f"ONNX outputs differ from PyTorch by {report['max_abs_diff']:.3g} (> --atol "
              f"{args.atol}) or labels differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
