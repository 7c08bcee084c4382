"""Proposal quality: detection recall DR@k, a random-box baseline, and the recall plot.

DR@k (Cheng et al. 2014, after Alexe et al.): the fraction of ground-truth boxes that have
IoU >= 0.5 with at least one of an image's ``k`` best proposals, over all boxes of a split.
Per box we keep the rank of its first hit (:func:`first_hits`), so the whole curve
``DR(1..k_max)`` costs one IoU matrix per image.

The baseline draws boxes like the quantized windows BING scores: a ``(W, H)`` pair uniformly
from the sizes that fit the image, its position uniform, seeded.
"""
from __future__ import annotations

from pathlib import Path
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_KS", "MISS", "iou_matrix", "first_hits", "detection_recall", "recall_curve",
           "random_proposals", "evaluate_recall", "plot_recall"]

DEFAULT_KS = (10, 100, 1000)
MISS = np.iinfo(np.int64).max  # first_hits of a box no proposal covers (not K: an image may have
                               # fewer than k proposals, and the box must still miss at k)


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if not boxes.size:
        return np.zeros((0, 4))
    return boxes.reshape(-1, boxes.shape[-1] if boxes.ndim > 1 else 4)[:, :4]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, >=4)`` with every box of ``b (M, >=4)`` (x1, y1, x2, y2;
    continuous coordinates, area = (x2 - x1) * (y2 - y1)) -> ``(N, M)`` float64."""
    a, b = _xyxy(a), _xyxy(b)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def first_hits(gt: np.ndarray, proposals: np.ndarray, thr: float = 0.5) -> np.ndarray:
    """Per ground-truth box ``(G, 4)``: the 0-based rank of the first of the (best-first)
    ``proposals (K, >=4)`` with IoU >= ``thr``, or :data:`MISS` when none -> ``(G,)`` int64."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if not len(gt) or not len(proposals):
        return np.full(len(gt), MISS, np.int64)
    hit = iou_matrix(gt, proposals) >= thr
    return np.where(hit.any(1), hit.argmax(1), MISS).astype(np.int64)


def recall_curve(hits: Iterable[np.ndarray], max_k: int) -> np.ndarray:
    """``DR@k`` for ``k = 1..max_k`` -> ``(max_k,)``; ``hits`` from :func:`first_hits` per image
    (a box never hit counts as a miss at every k). NaN when there are no boxes."""
    ranks = np.concatenate([np.asarray(h, dtype=np.int64).ravel() for h in hits] or [np.zeros(0, np.int64)])
    if not len(ranks):
        return np.full(max_k, np.nan)
    counts = np.bincount(np.clip(ranks, 0, max_k), minlength=max_k + 1)[:max_k]
    return np.cumsum(counts) / len(ranks)


def detection_recall(hits: Iterable[np.ndarray], ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """``{k: DR@k}`` over a split (see :func:`recall_curve`)."""
    ks = [int(k) for k in ks]
    curve = recall_curve(list(hits), max(ks))
    return {k: float(curve[k - 1]) for k in ks}


def random_proposals(img_w: int, img_h: int, n: int, sizes: Sequence[int],
                     rng: np.random.Generator) -> np.ndarray:
    """``n`` random boxes ``(n, 5)`` (score 0) of quantized sizes ``(W, H)``, W and H from
    ``sizes``, a pair uniform among those that fit in the image (clipped to it when none
    does), position uniform."""
    pairs = np.array([(w, h) for w in sizes for h in sizes], dtype=np.float64)
    fit = pairs[(pairs[:, 0] <= img_w) & (pairs[:, 1] <= img_h)]
    if not len(fit):
        fit = np.minimum(pairs, [img_w, img_h])
    wh = fit[rng.integers(0, len(fit), n)]
    x1 = rng.random(n) * (img_w - wh[:, 0])
    y1 = rng.random(n) * (img_h - wh[:, 1])
    return np.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1], np.zeros(n)], 1).astype(np.float32)


def evaluate_recall(model: Any, images: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], *,
                    ks: Sequence[int] = DEFAULT_KS, seed: int = 0, progress: bool = False
                    ) -> dict[str, Any]:
    """DR@k of ``model`` (anything with ``propose(image, top_k)`` and ``sizes``) and of
    :func:`random_proposals` (as many boxes per image, seeded) over a split.

    Returns ``{"dr": {"bing": {k: DR}, "random": {k: DR}}, "curves": {name: (k_max,)},
    "images", "boxes", "propose_s"}``; ``propose_s`` is the time spent in ``propose`` only
    (decoding excluded).
    """
    ks = sorted(int(k) for k in ks)
    k_max = ks[-1]
    rng = np.random.default_rng(seed)
    hits: dict[str, list[np.ndarray]] = {"bing": [], "random": []}
    spent = 0.0
    it: Iterable[int] = range(len(images))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="BING recall", unit="img", leave=False)
    for i in it:
        image = images[i]
        start = time.perf_counter()
        props = model.propose(image, k_max)
        spent += time.perf_counter() - start
        gt = np.asarray(gt_boxes[i], dtype=np.float64).reshape(-1, 4)
        hits["bing"].append(first_hits(gt, props))
        rand = random_proposals(image.shape[1], image.shape[0], k_max, model.sizes, rng)
        hits["random"].append(first_hits(gt, rand))
    curves = {name: recall_curve(h, k_max) for name, h in hits.items()}
    return {"dr": {name: {k: float(c[k - 1]) for k in ks} for name, c in curves.items()},
            "curves": curves, "images": len(images),
            "boxes": int(sum(len(h) for h in hits["bing"])), "propose_s": spent}


def plot_recall(curves: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """DR against the number of proposals (log x) for each named curve, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=100)
    for name, curve in curves.items():
        ks = np.arange(1, len(curve) + 1)
        ax.plot(ks, curve, lw=1.5, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("#proposals per image")
    ax.set_ylabel("detection recall (IoU >= 0.5)")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.96, bottom=0.13, top=0.9)
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
