"""Evaluation plots (PNG, matplotlib Agg) and the CSV tables ``dvc plots`` reads.

Files (all in ``<evaluate.out>/plots/``):
  train_loss.png / train_loss.csv     total + per-head losses and lr by iteration (json log)
  val_ap.png / val_ap.csv             val bbox/segm AP by epoch (json log)
  per_class_ap.png / per_class_ap.csv test AP per class, bbox and segm
  predictions.png                     test images: ground truth beside the predicted masks,
                                      boxes, class names and scores
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["train_loss_rows", "val_ap_rows", "write_csv", "plot_train_loss", "plot_val_ap",
           "plot_per_class_ap", "plot_predictions"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_csv(path: Path, rows: Sequence[Mapping], columns: Sequence[str]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def train_loss_rows(log_rows: Iterable[Mapping]) -> tuple[list[dict], list[str]]:
    """Train lines of mmengine's json log -> rows ``{step, epoch, loss, loss_*, lr}``."""
    rows = [dict(r) for r in log_rows if "loss" in r]
    keys = sorted({k for r in rows for k in r if k.startswith("loss") and k != "loss"})
    return rows, ["step", "epoch", "loss", *keys, "lr"]


def val_ap_rows(log_rows: Iterable[Mapping]) -> tuple[list[dict], list[str]]:
    """Val lines (``coco/bbox_mAP``...; no loss) -> rows ``{epoch, bbox_mAP, ..., segm_mAP_l}``;
    a val pass that detected nothing (no ``coco/`` keys) is AP 0."""
    rows = []
    for r in log_rows:
        if "loss" in r:
            continue
        row = {"epoch": r.get("step")}
        coco = {k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("coco/")}
        # mmdet's CocoMetric reports nothing when a model detected nothing: that is AP 0
        row.update(coco or {k: 0.0 for k in ("bbox_mAP", "bbox_mAP_50", "segm_mAP",
                                              "segm_mAP_50")})
        rows.append(row)
    cols = ["epoch"] + sorted({k for r in rows for k in r if k != "epoch"})
    return rows, cols


def plot_train_loss(rows: list[dict], columns: list[str], path: Path) -> None:
    plt = _plt()
    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows]
    for key in columns:
        if key.startswith("loss"):
            ax.plot(steps, [r.get(key, math.nan) for r in rows], label=key,
                    lw=2.0 if key == "loss" else 1.0)
    ax.set(xlabel="iteration", ylabel="loss (smoothed over the log interval)",
           title="training loss")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax_lr.plot(steps, [r.get("lr", math.nan) for r in rows], color="tab:gray")
    ax_lr.set(xlabel="iteration", ylabel="lr", title="learning rate")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_val_ap(rows: list[dict], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in rows]
    for key, style in (("bbox_mAP", "-o"), ("bbox_mAP_50", "--o"), ("segm_mAP", "-s"),
                       ("segm_mAP_50", "--s")):
        ax.plot(epochs, [r.get(key, math.nan) for r in rows], style, label=key)
    ax.set(xlabel="epoch", ylabel="AP", title="validation AP", ylim=(0, None))
    if not rows:
        ax.text(0.5, 0.5, "no validation epochs logged", ha="center", transform=ax.transAxes)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_class_ap(per_class: Mapping[str, Mapping[str, float]], path: Path) -> None:
    """``per_class = {"bbox": {cls: ap}, "segm": {cls: ap}}`` -> grouped bars (NaN = no GT)."""
    plt = _plt()
    classes = list(next(iter(per_class.values())).keys())
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(per_class))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(classes) + 2), 4))
    for i, (iou, values) in enumerate(per_class.items()):
        ax.bar(x + i * width, [np.nan_to_num(values[c]) for c in classes], width, label=iou)
    ax.set_xticks(x + width * (len(per_class) - 1) / 2, classes, rotation=45, ha="right")
    ax.set(ylabel="AP (IoU .50:.95)", title="test AP per class", ylim=(0, 1))
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _decode(seg, height: int, width: int) -> np.ndarray | None:
    """COCO segmentation (polygons, RLE, compressed RLE) -> (H, W) bool mask, or None."""
    from pycocotools import mask as mask_utils

    if not seg:
        return None
    if isinstance(seg, list):  # polygons
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = dict(seg)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode()
    return mask_utils.decode(rle).astype(bool)


def _draw(ax, img: np.ndarray, objects: list[dict], classes: Mapping[int, str], cmap,
          show_score: bool) -> None:
    """Masks (tinted), boxes and labels of COCO-style ``objects`` over ``img``."""
    plt = _plt()
    canvas = img.astype(np.float32) / 255.0
    h, w = img.shape[:2]
    for d in objects:
        m = _decode(d.get("segmentation"), h, w)
        if m is not None and m.shape == (h, w):
            color = np.array(cmap(d["category_id"] % 20)[:3])
            canvas[m] = 0.55 * canvas[m] + 0.45 * color
    ax.imshow(canvas)
    for d in objects:
        color = cmap(d["category_id"] % 20)
        x, y, bw, bh = d["bbox"]
        crowd = d.get("iscrowd")
        ax.add_patch(plt.Rectangle((x, y), bw, bh, fill=False, color=color, lw=1.2,
                                   ls="--" if crowd else "-"))
        label = classes.get(d["category_id"], d["category_id"])
        text = f"{label} {d['score']:.2f}" if show_score else f"{label}{' (crowd)' if crowd else ''}"
        ax.text(x, y, text, fontsize=6, color="white", va="bottom",
                bbox=dict(facecolor=color, alpha=0.8, pad=1, lw=0))


def plot_predictions(images: Sequence[tuple], classes: Mapping[int, str],
                     score_threshold: float, path: Path) -> None:
    """Ground truth beside predictions, one pair of panels per image.

    ``images``: (title, RGB image (H, W, 3) uint8, detections in COCO results format with
    ``segmentation`` RLE[, ground-truth annotations in COCO format]). Detections below
    ``score_threshold`` are not drawn; each panel's title counts what it shows.
    """
    plt = _plt()
    n = max(1, len(images))
    pairs = min(n, 2)                      # two image pairs (4 panels) per row
    rows = math.ceil(n / pairs)
    fig, axes = plt.subplots(rows, 2 * pairs, figsize=(3.6 * 2 * pairs, 3.9 * rows),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("tab10")
    for ax in axes.flat:
        ax.axis("off")
    for k, item in enumerate(images):
        title, img, dets = item[:3]
        gts = item[3] if len(item) > 3 else None
        ax_gt, ax_pred = axes[k // pairs, 2 * (k % pairs)], axes[k // pairs, 2 * (k % pairs) + 1]
        if gts is not None:
            _draw(ax_gt, img, gts, classes, cmap, show_score=False)
            ax_gt.set_title(f"{title}: ground truth ({len(gts)})", fontsize=8)
        kept = [d for d in dets if d["score"] >= score_threshold]
        _draw(ax_pred, img, kept, classes, cmap, show_score=True)
        ax_pred.set_title(f"predicted: {len(kept)} >= {score_threshold:g}", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
