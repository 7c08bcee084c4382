"""UniCL's bidirectional contrastive loss with label-aware targets (Yang et al., arXiv
2204.03610; the image-text-label objective of Florence, arXiv 2111.11432, Sec. 3.2).

Every pair ``i`` of a batch is a triplet (image ``x_i``, text ``t_i``, label ``y_i``). With
L2-normalised embeddings ``u_i`` (image) and ``v_j`` (text) and the learnable scale ``tau``
(logit scale, ``exp`` of a parameter, capped at 100), the logits are ``s_ij = tau * u_i . v_j``
and the positives of row ``i`` are ``P(i) = {k : y_k = y_i}``::

    L_i2t = -1/B sum_i 1/|P(i)| sum_{k in P(i)} log( exp(s_ik) / sum_j exp(s_ij) )
    L_t2i = -1/B sum_j 1/|Q(j)| sum_{k in Q(j)} log( exp(s_kj) / sum_i exp(s_ij) ),  Q(j) = {k : y_k = y_j}
    L     = (L_i2t + L_t2i) / 2

i.e. a cross-entropy against a target distribution uniform over each row's (column's)
positives. When every pair has its own label (``P(i) = {i}``) this is exactly CLIP's
symmetric InfoNCE, ``(CE(S, arange) + CE(S^T, arange)) / 2``. UniCL writes the loss as the sum
``L_i2t + L_t2i``; the mean used here is half of it (a constant factor the learning rate absorbs)
so that the CLIP reduction is exact.

Shapes: ``image (B, D)``, ``text (B, D)``, ``labels (B,)`` int -> scalar.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["MAX_LOGIT_SCALE", "positive_mask", "unicl_loss"]

MAX_LOGIT_SCALE = 100.0


def positive_mask(labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` labels -> ``(B, B)`` bool, True where two pairs share a label (diagonal True)."""
    return labels[:, None] == labels[None, :]


def unicl_loss(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
               logit_scale: torch.Tensor | float) -> dict[str, torch.Tensor]:
    """The UniCL loss (module docstring) and its two directions.

    ``image``/``text`` need not be normalised (they are here); ``logit_scale`` is the *log* of
    tau (a learnable scalar, init ``log(1 / 0.07)``), clamped so that tau <= 100.
    Returns ``{"loss", "loss_i2t", "loss_t2i", "tau"}`` (scalars).
    """
    u, v = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
    log_scale = torch.as_tensor(logit_scale, dtype=torch.float32, device=u.device)
    tau = log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()
    logits = tau * (u @ v.t())                               # (B, B): row = image, col = text
    pos = positive_mask(labels.to(u.device)).float()
    target = pos / pos.sum(dim=1, keepdim=True)              # symmetric mask: rows = columns
    i2t = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    t2i = -(target * logits.t().log_softmax(dim=1)).sum(dim=1).mean()
    return {"loss": (i2t + t2i) / 2, "loss_i2t": i2t, "loss_t2i": t2i, "tau": tau.detach()}

