"""Helpers for the pretraining benchmarks (``benchmarks/pretrain_throughput.py``,
``benchmarks/mae_speedup.py``): synthetic batches and step timing. Torch only.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Any, Callable

import torch

from components.pretrain.registry import MethodSpec

__all__ = ["DTYPES", "synthetic_batch", "time_step", "compare", "peak_mib", "reset_peak", "env_info",
           "emit"]

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def synthetic_batch(spec: MethodSpec, batch: int, img: int, device: torch.device,
                    num_classes: int = 16) -> dict[str, torch.Tensor]:
    """Random normalised images for each of the method's registered ``inputs`` (+ targets)."""
    g = torch.Generator().manual_seed(0)
    out = {k: torch.randn(batch, 3, img, img, generator=g).to(device) for k in spec.inputs}
    if spec.data == "labels":
        out["targets"] = (torch.rand(batch, num_classes, generator=g) < 0.2).float().to(device)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(fn: Callable[[], Any], device: torch.device, steps: int, warmup: int) -> float:
    """Mean wall seconds of ``fn()`` over ``steps`` calls after ``warmup`` (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / steps


def compare(fns: dict[str, Callable[[], Any]], device: torch.device, steps: int, warmup: int,
            rounds: int = 3) -> dict[str, tuple[float, float | None]]:
    """``{name: (median seconds per call, peak MiB)}`` for competing configurations.

    Each configuration is warmed up alone (its CUDA peak memory is read then); then ``rounds``
    rounds each time every configuration for ``steps`` calls, interleaved, and the median of the
    rounds is kept, so load drift on a shared machine hits all configurations alike.
    """
    peaks = {}
    for name, fn in fns.items():
        reset_peak(device)
        for _ in range(max(1, warmup)):
            fn()
        _sync(device)
        peaks[name] = peak_mib(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_step(fn, device, steps, 0))
    return {name: (statistics.median(t), peaks[name]) for name, t in times.items()}


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def env_info(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "machine": platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def emit(record: dict[str, Any]) -> None:
    """One JSON line on stdout (flushed)."""
    print(json.dumps(record, sort_keys=False), flush=True)
