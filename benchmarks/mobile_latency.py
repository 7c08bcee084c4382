"""MobileViT paper Table 3 analogue: latency, throughput, parameters and checkpoint size of the
mobile backbones and of the SSDLite detector built on each, in PyTorch and ONNX Runtime (CPU).

Per backbone family:size (default MobileViT XXS/XS/S and MobileNetV2 1.0), fp32, at --img px:
* backbone (our registered module, timm features) and the full SSDLite network (backbone +
  extra levels + head, raw outputs: what ONNX exports; NMS excluded) at batch 1: median and
  p95 ms over --runs after --warmup, with 1 thread and with all threads;
* throughput at --batch (all threads), images/s;
* ONNX Runtime batch-1 latency of the exported SSDLite network (all threads, and 1 thread);
* parameters (backbone, detector) and checkpoint size (safetensors: backbone, detector).

    python benchmarks/mobile_latency.py [--img 256] [--runs 30] [--batch 64] [--no-onnx]

The detector needs mmdet and the built-in dataset (its class list; `make run` makes it).
Prints one JSON object (and --out FILE).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

DEFAULT = ["mobilevit:xxs", "mobilevit:xs", "mobilevit:s", "mobilenetv2:1.0"]


def _latency(fn, runs: int, warmup: int) -> dict[str, float]:
    from components.export.onnx import latency_ms

    r = latency_ms(fn, runs, warmup)
    return {"p50_ms": r["p50"], "p95_ms": r["p95"]}


def _threads(n: int, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _torch_figures(fn, one: torch.Tensor, many: torch.Tensor, args) -> tuple[dict, float]:
    """Batch-1 latency at 1 and all threads, and batch throughput (img/s) at all threads."""
    with torch.no_grad():
        ms = {_key(n): _threads(n, lambda: _latency(lambda: fn(one), args.runs, args.warmup))
              for n in sorted({1, os.cpu_count() or 1})}
        t0 = time.perf_counter()
        for _ in range(args.batch_runs):
            fn(many)
        rate = round(args.batch * args.batch_runs / (time.perf_counter() - t0), 1)
    return ms, rate


def _key(threads: int) -> str:
    return f"{threads}_thread{'s' if threads > 1 else ''}"


def _mib(module: torch.nn.Module) -> float:
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
        return round(path.stat().st_size / 2**20, 3)


def _detector(family: str, size: str, img: int):
    from components.common.params import apply_overrides, load_params
    from components.models.registry import MODELS
    from components.train.config import build_config

    params = apply_overrides(load_params(ROOT / "params.yaml"), {
        "model.detector": "ssdlite", "model.backbone": family, "model.size": size,
        "model.checkpoint": "", "finetune.img_size": img})
    cfg = build_config(params)
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    return MODELS.build(cfg.model).eval()  # constructor init: timing does not need mmengine's


def measure(entry: str, args) -> dict:
    from components.models.backbones import BACKBONES

    family, _, size = entry.partition(":")
    spec = BACKBONES[family]
    backbone = spec.build(spec.config({"size": size})).eval()
    one = torch.randn(1, 3, args.img, args.img)
    many = torch.randn(args.batch, 3, args.img, args.img)
    out: dict = {"backbone": entry, "img": args.img,
                 "backbone_params_m": round(sum(p.numel() for p in backbone.parameters()) / 1e6, 3),
                 "backbone_mib": _mib(backbone)}
    out["backbone_ms"], out["backbone_img_per_s"] = _torch_figures(backbone, one, many, args)
    if args.no_detector:
        return out
    from components.export.onnx import RawNetwork, export_onnx

    detector = _detector(family, size, args.img)
    net = RawNetwork(detector).eval()
    out.update(detector_params_m=round(sum(p.numel() for p in detector.parameters()) / 1e6, 3),
               detector_mib=_mib(detector))
    out["detector_ms"], out["detector_img_per_s"] = _torch_figures(net, one, many, args)
    if not args.no_onnx:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(detector, Path(tmp) / "m.onnx", args.img)
            out["onnx_mib"] = round(path.stat().st_size / 2**20, 3)
            feed = one.numpy()
            out["onnxruntime_ms"] = {}
            for n in sorted({1, os.cpu_count() or 1}):
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = n
                sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                name = sess.get_inputs()[0].name
                out["onnxruntime_ms"][_key(n)] = _latency(
                    lambda: sess.run(None, {name: feed}), args.runs, args.warmup)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=DEFAULT, help="family:size entries")
    ap.add_argument("--img", type=int, default=256)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batch-runs", type=int, default=2)
    ap.add_argument("--no-detector", action="store_true", help="backbones only (torch + timm)")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    from components.common.env import apply_defaults

    apply_defaults()
    rows = []
    for entry in args.backbones:
        rows.append(measure(entry, args))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"torch": torch.__version__, "threads": os.cpu_count(), "rows": rows}
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
