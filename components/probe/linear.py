"""A linear classifier on frozen embeddings: L2-regularised logistic regression by L-BFGS.

Multi-label (independent sigmoids, BCE: OpenImages-style image-level labels) or single-label
(softmax, cross-entropy: class accuracy, few-shot). Features are standardised with the
training set's mean and std, which the probe keeps, so ``scores`` takes raw embeddings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LinearProbe", "fit_linear_probe"]


class LinearProbe(nn.Module):
    """Standardise -> Linear ``(N, C) -> (N, K)`` logits."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int,
                 multilabel: bool) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.multilabel = multilabel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities: sigmoid per class (multi-label) or softmax over classes."""
        logits = self(x.float())
        return logits.sigmoid() if self.multilabel else logits.softmax(dim=1)


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, *, multilabel: bool,
                     num_classes: int | None = None, weight_decay: float = 1e-3,
                     max_iter: int = 200, seed: int = 0) -> LinearProbe:
    """Fit the probe on ``x`` ``(N, C)``; ``y`` is ``(N, K)`` 0/1 (multi-label) or ``(N,)`` class
    indices (single-label, ``num_classes`` defaults to ``y.max() + 1``).

    ``weight_decay`` is the L2 penalty on the weights (mean loss + wd/2 * ||W||^2): the usual
    knob of a linear-probe sweep; the zero init + convex loss make the result deterministic.
    """
    x = x.float()
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"linear probe needs (N, C) features with N > 0, got {tuple(x.shape)}")
    if multilabel:
        y = y.float()
        if y.shape[0] != x.shape[0] or y.ndim != 2:
            raise ValueError(f"multi-label targets must be (N, K) for N={len(x)}, got {tuple(y.shape)}")
        k = y.shape[1]
    else:
        y = y.long()
        k = int(num_classes if num_classes is not None else int(y.max()) + 1)
    torch.manual_seed(seed)
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(mean)
    probe = LinearProbe(mean, std, k, multilabel)
    opt = torch.optim.LBFGS(probe.linear.parameters(), lr=1.0, max_iter=max_iter,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = probe(x)
        loss = (F.binary_cross_entropy_with_logits(logits, y) if multilabel
                else F.cross_entropy(logits, y))
        loss = loss + 0.5 * weight_decay * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return probe.eval()
