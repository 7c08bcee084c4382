"""Measurements of one variant (paper Table 3's columns): peak training memory, average training
iteration time, average inference time per image; plus the validation AP curve.

Every variant runs in a fresh process (see :mod:`components.experiments.runner`), so the memory
figures belong to that variant alone.

Peak training memory (:class:`PeakMemory`):
  * CUDA: ``torch.cuda.max_memory_allocated()`` after resetting the peak stats before fine-tuning
    (tensor memory on the device, as the paper reports);
  * CPU: RSS-based, so it counts everything the process touches (tensors, allocator slack,
    Python objects): the peak RSS during fine-tuning minus the RSS just before it. The peak is
    the kernel's ``VmHWM`` after resetting it with ``/proc/self/clear_refs`` (Linux >= 4.0);
    where that is not allowed, a thread samples ``VmRSS`` every 20 ms (may miss short spikes).
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Iterable

__all__ = ["PeakMemory", "read_train_log", "train_iter_time", "val_curve", "time_inference"]

_MIB = 1024 * 1024


def _status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager measuring the peak memory of the block; see the module docstring.

    After the block: ``peak_mib`` (peak above the baseline), ``baseline_mib``, ``method``,
    ``device``.
    """

    def __init__(self, device: str | None = None, sample_s: float = 0.02) -> None:
        self.device = device
        self.sample_s = sample_s
        self.peak_mib = float("nan")
        self.baseline_mib = float("nan")
        self.method = ""
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hwm = False

    def __enter__(self) -> "PeakMemory":
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline_mib = torch.cuda.memory_allocated() / _MIB
            self.method = "cuda: torch.cuda.max_memory_allocated() - allocated before fine-tuning"
            return self
        self._hwm = _reset_hwm() and _status_kib("VmHWM") is not None
        self.baseline_mib = (_status_kib("VmRSS") or 0.0) / 1024
        if self._hwm:
            self.method = "cpu RSS: VmHWM (reset via /proc/self/clear_refs) - VmRSS before fine-tuning"
        else:
            self.method = "cpu RSS: max VmRSS sampled every 20 ms - VmRSS before fine-tuning"
            self._sampled = self.baseline_mib
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_s):
            rss = _status_kib("VmRSS")
            if rss is not None:
                self._sampled = max(self._sampled, rss / 1024)

    def __exit__(self, *exc: Any) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak_mib = torch.cuda.max_memory_allocated() / _MIB - self.baseline_mib
            return
        if self._hwm:
            peak = (_status_kib("VmHWM") or 0.0) / 1024
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = self._sampled
        self.peak_mib = max(0.0, peak - self.baseline_mib)

    def as_dict(self) -> dict[str, Any]:
        return {"peak_train_mem_mib": round(self.peak_mib, 2), "baseline_mib": round(self.baseline_mib, 2),
                "method": self.method, "device": self.device}


def read_train_log(path: str | Path) -> list[dict]:
    """Rows of the fine-tuning stage's ``final/train_log.jsonl`` (mmengine json log)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _is_val(row: dict) -> bool:
    return any(k.startswith("coco/") for k in row)


def train_iter_time(rows: Iterable[dict]) -> dict[str, Any]:
    """Average training iteration time (s) over the logged windows, the first one excluded.

    mmengine's ``time`` of a train row is the mean iteration time of its logging window; the
    first window holds the warm-up (allocator growth, lazy init). With a single window it is
    kept and ``warmup_excluded`` is False.
    """
    train = sorted((r for r in rows if "loss" in r and not _is_val(r) and "time" in r),
                   key=lambda r: int(r.get("step", 0)))
    times = [float(r["time"]) for r in train if math.isfinite(float(r["time"]))]
    used = times[1:] if len(times) > 1 else times
    mean = sum(used) / len(used) if used else float("nan")
    return {"train_iter_s": mean, "windows": len(used), "warmup_excluded": len(times) > 1}


def val_curve(rows: Iterable[dict]) -> list[dict[str, float]]:
    """Per-epoch validation AP (rows with ``coco/bbox_mAP``; their ``step`` is the epoch)."""
    out = []
    for r in rows:
        if "coco/bbox_mAP" in r:
            point = {"epoch": int(r.get("step", 0))}
            point.update({k.split("/", 1)[1]: float(v) for k, v in r.items()
                          if k.startswith("coco/") and isinstance(v, (int, float))})
            out.append(point)
    return sorted(out, key=lambda p: p["epoch"])


def time_inference(model: Any, images: list[str | Path], *, warmup: int = 1) -> dict[str, Any]:
    """Mean seconds per image of ``mmdet.apis.inference_detector`` at batch 1 (eval mode, no
    grad), after ``warmup`` untimed images (the first of ``images``)."""
    import torch
    from mmdet.apis import inference_detector
    from mmengine.registry import init_default_scope

    if not images:
        raise ValueError("no images to time inference on")
    init_default_scope(model.cfg.get("default_scope", "mmdet"))
    model.eval()
    cuda = next(model.parameters()).is_cuda
    paths = [str(p) for p in images]
    with torch.no_grad():
        for p in paths[:max(0, warmup)]:
            inference_detector(model, p)
        seconds = []
        for p in paths:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            inference_detector(model, p)
            if cuda:
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - t0)
    return {"infer_s_per_img": sum(seconds) / len(seconds), "images": len(seconds),
            "warmup_images": min(warmup, len(paths)), "batch_size": 1}
