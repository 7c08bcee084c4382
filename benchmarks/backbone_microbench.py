"""Backbone-only micro-benchmark: forward+backward time, peak memory and FLOP rate of the plain ViT
per attention strategy and attention implementation.

Needs only torch (and this repo's ``components/models``, which imports without mmdet).
Prints ONE JSON line per configuration on stdout (progress goes to stderr)::

    python benchmarks/backbone_microbench.py --size large --img 1024 --window 16 \\
        --device cuda --dtype bf16 --iters 20 --warmup 5 --peak-tflops 989

Strategies: ``windowed`` (all blocks windowed), ``hybrid`` (windowed + 4 global blocks at the
quarter ends), ``global_ckpt`` (all global, activation checkpointing in every block),
``global`` (all global). Implementations: ``fused`` (``scaled_dot_product_attention``) and
``naive`` (explicit softmax(QK^T)V).

Measurements
- time: mean wall time of one ``zero_grad + forward + backward`` (batch ``--batch``, loss =
  sum of the output maps' means) over ``--iters`` after ``--warmup``; CUDA is synchronised.
- memory, CUDA: ``torch.cuda.max_memory_allocated`` over warmup+iters (``peak_mem_mib``,
  absolute: weights + grads + activations) and that minus the allocation before the first
  iteration (``peak_mem_delta_mib``).
- memory, CPU: each configuration runs in a fresh child process; ``peak_mem_mib`` is the
  child's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and ``peak_mem_delta_mib``
  that minus the RSS just before the first iteration (psutil if installed, else /proc).
- FLOPs: counted analytically (matmuls and the patch conv; a multiply-add = 2 FLOPs;
  windows include their padding) for the forward pass, x3 for forward+backward. These are
  *model* FLOPs: the recomputation of checkpointed blocks is not counted, so checkpointing
  shows as lower TFLOP/s. ``mfu`` = achieved TFLOP/s / ``--peak-tflops``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.models.backbones.vit import SIZES  # noqa: E402
from components.models.backbones.vit import ViT  # noqa: E402

STRATEGIES = {  # name -> ViT kwargs
    "windowed": dict(attention="windowed"),
    "hybrid": dict(attention="hybrid"),
    "global_ckpt": dict(attention="global", with_cp=True),
    "global": dict(attention="global"),
}
IMPLS = ("fused", "naive")


def forward_flops(model: ViT, img_hw: tuple[int, int], batch: int = 1) -> int:
    """Analytic forward FLOPs of ``model`` on a ``(batch, 3, H, W)`` image (matmuls + patch conv)."""
    p, c = model.patch_size, model.embed_dim
    h, w = -(-img_hw[0] // p), -(-img_hw[1] // p)
    n = h * w
    in_ch = model.patch_embed.proj.in_channels
    total = 2 * n * c * in_ch * p * p
    for blk in model.blocks:
        total += 2 * n * c * 2 * blk.mlp.fc1.out_features  # fc1, fc2
        if blk.window_size > 0:  # qkv/proj also run on the padding tokens of the windows
            wh, ww = min(blk.window_size, h), min(blk.window_size, w)
            windows = (-(-h // wh)) * (-(-w // ww))
            total += windows * (2 * wh * ww * c * 4 * c + 4 * (wh * ww) ** 2 * c)
        else:
            total += 2 * n * c * 4 * c + 4 * n * n * c  # qkv + proj, q k^T + attn v
    return batch * total


def current_rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(args: argparse.Namespace, strategy: str, impl: str) -> dict:
    device = torch.device(args.device)
    row = dict(size=args.size, img=args.img, batch=args.batch, strategy=strategy, attn_impl=impl,
               device=args.device, dtype=args.dtype, iters=args.iters, warmup=args.warmup)
    torch.manual_seed(0)
    with device:  # initialise on the device (ViT-L's init on CPU takes seconds)
        model = ViT(args.size, pretrain_img_size=args.pretrain_img, window_size=args.window,
                    attn_impl=impl, **STRATEGIES[strategy]).train()
    row.update(window=model.window_size, global_blocks=list(model.global_blocks),
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
    x = torch.randn(args.batch, 3, args.img, args.img, device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with amp:
            outs = model(x)
        sum(o.float().mean() for o in outs).backward()

    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    else:
        before = current_rss_mib()
    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync(device)
    seconds = (time.perf_counter() - start) / args.iters
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        method = "cuda max_memory_allocated (absolute)"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        method = "cpu peak RSS of a fresh process (ru_maxrss)"
    flop = 3 * forward_flops(model, (args.img, args.img), args.batch)
    tflops = flop / seconds / 1e12
    row.update(ms_per_iter=round(seconds * 1e3, 2), peak_mem_mib=round(peak, 1),
               peak_mem_delta_mib=round(peak - before, 1), mem_method=method,
               gflop_per_iter=round(flop / 1e9, 2), tflops=round(tflops, 3),
               mfu=round(tflops / args.peak_tflops, 4) if args.peak_tflops else None)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--size", choices=sorted(SIZES), default="base")
    ap.add_argument("--img", type=int, default=1024, help="square image side in pixels")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--pretrain-img", type=int, default=224,
                    help="pretraining image side: sets the pos-embed grid and the default window")
    ap.add_argument("--window", type=int, default=None,
                    help="window side in tokens (default: pretrain-img / 16; the H200 reference "
                         "figures used 16)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16",
                    help="bf16 = torch.autocast(bfloat16) with fp32 weights")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help=f"comma list from {list(STRATEGIES)}")
    ap.add_argument("--impls", default=",".join(IMPLS), help=f"comma list from {list(IMPLS)}")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="accelerator peak TFLOP/s for the dtype (e.g. 989 for H100/H200 dense "
                         "bf16); adds mfu")
    ap.add_argument("--no-isolate", action="store_true",
                    help="CPU: run all configurations in this process (peak RSS then only grows)")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)  # child: one 'strategy:impl'
    args = ap.parse_args(argv)
    for s in args.strategies.split(","):
        if s not in STRATEGIES:
            ap.error(f"unknown strategy {s!r}; choose from {list(STRATEGIES)}")
    for i in args.impls.split(","):
        if i not in IMPLS:
            ap.error(f"unknown impl {i!r}; choose from {list(IMPLS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.only:
        configs = [tuple(args.only.split(":"))]
    else:
        configs = [(s, i) for s in args.strategies.split(",") for i in args.impls.split(",")]
    isolate = args.device == "cpu" and not args.no_isolate and not args.only
    failures = 0
    for strategy, impl in configs:
        if not args.only:
            print(f"[microbench] {args.size} {args.img}px {strategy}/{impl} ...", file=sys.stderr)
        if isolate:
            child = subprocess.run([sys.executable, __file__, *argv, "--only", f"{strategy}:{impl}"],
                                   capture_output=True, text=True)
            sys.stderr.write(child.stderr)
            lines = [ln for ln in child.stdout.splitlines() if ln.startswith("{")]
            if child.returncode != 0 or not lines:
                failures += 1
                print(json.dumps(dict(size=args.size, img=args.img, strategy=strategy,
                                      attn_impl=impl, error=f"child exit {child.returncode}")))
            else:
                print(lines[-1], flush=True)
            continue
        try:
            row = run_one(args, strategy, impl)
        except torch.OutOfMemoryError as exc:  # a result, not a failure of the benchmark
            row = dict(size=args.size, img=args.img, strategy=strategy, attn_impl=impl,
                       error=f"out of memory: {str(exc).splitlines()[0]}")
        row.update(torch=torch.__version__, host=platform.node())
        if args.device.startswith("cuda"):
            row["gpu"] = torch.cuda.get_device_name()
        print(json.dumps(row), flush=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
