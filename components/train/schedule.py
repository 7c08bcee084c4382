"""Epochs -> iterations, and the learning-rate schedule in iterations.

Why iterations: the warm-up is a fraction of an epoch (``finetune.warmup_epochs: 0.25``) and
the cosine must end exactly at the last iteration, so both are counted in optimizer steps. The
arithmetic lives here (pure Python, no mmengine) so tests and the benchmark can check it.

    ITERS_PER_EPOCH = ceil(num_train_images / batch_size)   # DefaultSampler, drop_last=False
    TOTAL_ITERS     = epochs * ITERS_PER_EPOCH
    WARMUP_ITERS    = round(warmup_epochs * ITERS_PER_EPOCH), clipped to [0, TOTAL_ITERS - 1]

e.g. the default synthetic set: 240 train images / batch 4 = 60 iters/epoch; 12 epochs = 720
iters; warm-up 0.25 epoch = 15 iters, then a half-period cosine from lr to 0 over 705 iters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Schedule", "make_schedule", "lr_schedulers"]

WARMUP_START_FACTOR = 1e-3  # lr at iteration 0 = 0.001 * lr, rising linearly


@dataclass(frozen=True)
class Schedule:
    num_train_images: int
    batch_size: int
    epochs: int
    iters_per_epoch: int
    total_iters: int
    warmup_iters: int


def make_schedule(num_train_images: int, batch_size: int, epochs: int,
                  warmup_epochs: float) -> Schedule:
    """Count the iterations of a run (see the module docstring for the formula)."""
    if num_train_images <= 0:
        raise ValueError("no training images (after filter_empty_gt): the train split's COCO "
                         "JSON has no image with an annotation")
    if batch_size <= 0 or epochs <= 0:
        raise ValueError(f"finetune.batch_size ({batch_size}) and finetune.epochs ({epochs}) "
                         "must be positive")
    if warmup_epochs < 0:
        raise ValueError(f"finetune.warmup_epochs must be >= 0, got {warmup_epochs}")
    per_epoch = math.ceil(num_train_images / batch_size)
    total = epochs * per_epoch
    warmup = min(max(int(round(warmup_epochs * per_epoch)), 0), total - 1)
    return Schedule(num_train_images, batch_size, epochs, per_epoch, total, warmup)


def lr_schedulers(s: Schedule) -> list[dict]:
    """mmengine ``param_scheduler`` list: linear warm-up, then half-period cosine to 0.

    Both are iteration-based (``by_epoch=False``); ``end`` is exclusive in mmengine.
    """
    schedulers = []
    if s.warmup_iters > 0:
        schedulers.append(dict(type="LinearLR", start_factor=WARMUP_START_FACTOR, by_epoch=False,
                               begin=0, end=s.warmup_iters))
    cosine_iters = s.total_iters - s.warmup_iters
    schedulers.append(dict(type="CosineAnnealingLR", by_epoch=False, begin=s.warmup_iters,
                           end=s.total_iters, T_max=cosine_iters, eta_min=0.0))
    return schedulers
