"""Pretraining throughput per registered method: images/s of one full optimizer step.

One step = forward (the method's whole model: encoder, decoder/heads, momentum encoder,
frozen tokenizer) + backward + AdamW step + ``after_step`` (MoCo's EMA), under the same autocast
as ``components.pretrain.engine.fit``. Batches are random tensors shaped like each method's
registered inputs, so the figure is the model's compute ceiling, without JPEG decoding and
augmentation. ``random`` has no training step and is skipped. Prints ONE JSON line per method::

    python benchmarks/pretrain_throughput.py                      # CPU default: tiny, 128 px, batch 32
    python benchmarks/pretrain_throughput.py --size base --img 224 --batch 256 --dtype bf16 --device cuda

Needs only torch (+ safetensors, which timm brings) and this repo's ``components`` (no mmcv,
mmengine or mlflow are imported). ``--tokenizer`` adds a line for BEiT's VQ-VAE stage.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchutil

import components.pretrain as pretrain  # noqa: E402
from benchutil import (  # noqa: E402
    DTYPES, emit, env_info, peak_mib, reset_peak, synthetic_batch, time_step)
from components.pretrain.config import config_from_params  # noqa: E402
from components.pretrain.engine import param_groups  # noqa: E402
from components.pretrain.registry import MethodSpec  # noqa: E402
from components.pretrain.tokenizer import TOKENIZER_DEFAULTS, VQTokenizer, save_tokenizer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="*", default=None,
                    help=f"subset of {sorted(pretrain.METHODS)} (default: all trainable)")
    ap.add_argument("--size", default="tiny", help="ViT size (tiny|small|base|large)")
    ap.add_argument("--img", type=int, default=128, help="square image side (params model.pretrain_img_size)")
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="fp32 or bf16 autocast")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per method")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                    help="method option, e.g. mae.decoder_depth=8 (value parsed as int/float/bool)")
    ap.add_argument("--tokenizer", action="store_true", help="also time the tokenizer stage's step")
    return ap.parse_args(argv)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def build(spec: MethodSpec, args: argparse.Namespace, options: dict, workdir: Path) -> torch.nn.Module:
    params = {"seed": 0, "model": {"size": args.size, "patch_size": args.patch,
                                   "pretrain_img_size": args.img},
              "pretrain": {"out": str(workdir), spec.name: dict(options)}}
    if "tokenizer" in spec.requires:  # an untrained tokenizer costs the same as a trained one
        path = save_tokenizer(VQTokenizer(downsample=args.patch, **{
            k: TOKENIZER_DEFAULTS[k] for k in ("codebook_size", "code_dim", "hidden")}),
            workdir / "tokenizer.safetensors")
        params["pretrain"][spec.name]["tokenizer"] = str(path)
    model = spec.build(config_from_params(params, spec.name, spec.defaults))
    if spec.data == "labels":
        model.set_label_space([f"class{i}" for i in range(16)])
    return model


def measure(name: str, model: torch.nn.Module, batch: dict, args: argparse.Namespace,
            device: torch.device) -> dict:
    model.to(device).train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4)
    dtype = DTYPES[args.dtype]

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if hasattr(model, "after_step"):
            model.after_step(1, 100)

    reset_peak(device)
    sec = time_step(step, device, args.steps, args.warmup)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"bench": "pretrain_throughput", "method": name, "size": args.size, "img": args.img,
            "batch": args.batch, "device": str(device), "dtype": args.dtype, "steps": args.steps,
            "step_ms": round(sec * 1000, 2), "img_per_s": round(args.batch / sec, 2),
            "trainable_params_m": round(trainable / 1e6, 2), "peak_mem_mib": peak_mib(device),
            **env_info(device)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # every trainable method whose inputs this script can make (a tokenizer, yes; another
    # stage's dataset, e.g. UniCL's curated captions, no: its tests time it)
    names = args.methods or [n for n, s in pretrain.METHODS.items()
                             if s.data != "none" and set(s.requires) <= {"tokenizer"}]
    options: dict[str, dict] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        method, _, opt = key.partition(".")
        options.setdefault(method, {})[opt] = _value(raw)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = pretrain.get_method(name)
            if spec.data == "none":
                continue
            torch.manual_seed(0)
            model = build(spec, args, options.get(name, {}), Path(tmp))
            batch = synthetic_batch(spec, args.batch, args.img, device)
            emit(measure(name, model, batch, args, device))
            del model, batch
        if args.tokenizer:
            cfg = {k: options.get("tokenizer", {}).get(k, TOKENIZER_DEFAULTS[k])
                   for k in ("codebook_size", "code_dim", "hidden")}
            tok = VQTokenizer(downsample=args.patch, **cfg)
            batch = {"image": torch.randn(args.batch, 3, args.img, args.img).to(device)}
            emit(measure("tokenizer", tok, batch, args, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
