"""Ranking and accuracy scores of a probe's outputs."""
from __future__ import annotations

import math

import torch

__all__ = ["average_precision", "mean_average_precision", "top1_accuracy"]


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Non-interpolated AP of one class: mean precision at the rank of each positive
    (scikit-learn's ``average_precision_score``; ties ordered by index, stably). NaN if the
    class has no positive."""
    scores, targets = scores.float().flatten(), targets.float().flatten()
    n_pos = int(targets.sum())
    if n_pos == 0:
        return math.nan
    order = torch.argsort(scores, descending=True, stable=True)
    hits = targets[order]
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float32)
    return float((precision * hits).sum() / n_pos)


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor
                           ) -> tuple[float, list[float]]:
    """``(mAP over classes with a positive, per-class AP (NaN where none))`` for ``(N, K)``."""
    per_class = [average_precision(scores[:, k], targets[:, k]) for k in range(scores.shape[1])]
    valid = [ap for ap in per_class if not math.isnan(ap)]
    return (sum(valid) / len(valid) if valid else math.nan), per_class


def top1_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest score is the label."""
    if len(labels) == 0:
        return math.nan
    return float((scores.argmax(dim=1) == labels.long()).float().mean())
