"""One pretraining run end to end: data -> :func:`engine.fit` -> atomically written outputs.

``<out>/<method>/`` (``out`` = ``pretrain.out``, default ``pretrained``) appears whole or not at
all (:func:`components.common.atomic.atomic_dir`) and holds:

* ``backbone.safetensors``: the backbone's ``state_dict`` written by its family (backbone keys
  only; the ViT's pos_embed at the pretraining grid) (the tokenizer stage writes
  ``tokenizer.safetensors`` instead);
* ``metrics.json``: final loss and throughput (``dvc metrics show``);
* ``meta.json``: method, size, image size, epochs, steps, images used and their content hash,
  initial/final loss, wall time, throughput (img/s), the resolved config;
* ``loss.csv`` (step, loss, lr, other logged scalars) and ``loss_curve.png``.

No MLflow here: the CLI (:mod:`components.pretrain.__main__`) wraps this in a stage run and
passes ``on_log`` to stream per-step metrics.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from components.common.atomic import atomic_dir
from components.common.dvc_metrics import row
from components.common.env import project_relative
from components.pretrain.config import PretrainConfig
from components.pretrain.data import ImageDataset, image_level_labels, images_hash, unlabeled_images
from components.pretrain.engine import History, fit, seed_everything
from components.pretrain.registry import get_method

__all__ = ["run", "train_and_write", "write_curve"]


def _backbone_params(model: nn.Module) -> int | None:
    backbone = getattr(model, "backbone", None)
    return sum(p.numel() for p in backbone.parameters()) if backbone is not None else None


def write_curve(hist: History, path: Path, title: str) -> None:
    """Loss (left axis) and learning rate (right axis) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    if hist.steps:
        ax.plot(hist.step, hist.loss, color="tab:blue", lw=1.2, label="loss")
        ax2 = ax.twinx()
        ax2.plot(hist.step, hist.lr, color="tab:orange", lw=1.0, ls="--", label="lr")
        ax2.set_ylabel("learning rate", color="tab:orange")
    else:
        ax.text(0.5, 0.5, "no training steps", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.85, bottom=0.15, top=0.9)  # tight_layout is slow
    fig.savefig(path)
    plt.close(fig)


def _write_csv(hist: History, path: Path) -> None:
    extras = sorted(hist.extra)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["step", "loss", "lr", *extras])
    for i, step in enumerate(hist.step):
        writer.writerow([step, f"{hist.loss[i]:.6g}", f"{hist.lr[i]:.6g}",
                         *(f"{hist.extra[k][i]:.6g}" for k in extras)])
    path.write_text(buf.getvalue())


def train_and_write(cfg: PretrainConfig, model: nn.Module, *, data: str,
                    save: Callable[[nn.Module, Path], Any],
                    extra: Callable[[nn.Module, Sequence[Path]], dict] | None = None,
                    progress: bool = True,
                    on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train ``model`` on the images ``data`` names, then write ``cfg.out_dir`` atomically.

    ``save(model, folder)`` writes the weights; ``extra(model, paths)`` adds meta entries.
    Returns the meta dict (also written as ``meta.json``).
    """
    start = time.perf_counter()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    generator = seed_everything(cfg.seed)
    paths: list[Path] = []
    hist = History()
    if data != "none":
        if data == "custom":
            dataset, paths = model.make_dataset(cfg)
            paths = list(paths)
        else:
            if data == "unlabeled":
                paths, targets = unlabeled_images(cfg.data_root, cfg.max_images), None
            else:
                paths, targets, classes = image_level_labels(
                    cfg.data_root, cfg.options.get("split", "train"), cfg.max_images)
                model.set_label_space(classes)
            dataset = ImageDataset(paths, model.make_transform(), targets)
        batch = min(cfg.batch_size, len(dataset))
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                            num_workers=cfg.num_workers, generator=generator,
                            persistent_workers=cfg.num_workers > 0)
        hist = fit(model, loader, cfg, on_log=on_log, progress=progress)
    model.cpu().eval()
    meta: dict[str, Any] = {
        "method": cfg.method,
        "backbone": cfg.backbone,
        "size": cfg.size,
        "arch": cfg.arch,
        "patch_size": cfg.patch_size,
        "img_size": cfg.img_size,
        "grid": [cfg.grid, cfg.grid],
        "seed": cfg.seed,
        "epochs": cfg.epochs if data != "none" else 0,
        "steps": hist.steps,
        "batch_size": min(cfg.batch_size, len(paths)) if paths else 0,
        "images": len(paths),
        "images_seen": hist.images,
        "data_root": project_relative(cfg.data_root),
        "data_hash": images_hash(paths, cfg.data_root) if paths else None,
        "initial_loss": hist.loss[0] if hist.loss else None,
        "final_loss": hist.final_loss(),
        "train_s": round(hist.train_s, 3),
        "throughput_img_s": round(hist.throughput, 2),
        "device": cfg.device,
        "precision": cfg.precision,
        "backbone_params": _backbone_params(model),
        "torch": torch.__version__,
        "options": cfg.options,
        "config": cfg.summary(),
    }
    if extra is not None:
        meta.update(extra(model, paths))
    with atomic_dir(cfg.out_dir) as tmp:
        save(model, tmp)
        _write_csv(hist, tmp / "loss.csv")
        write_curve(hist, tmp / "loss_curve.png", f"pretrain {cfg.method} ({cfg.size}, "
                    f"{cfg.img_size}px)")
        meta["wall_s"] = round(time.perf_counter() - start, 3)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(row(
            final_loss=meta["final_loss"], img_per_s=meta["throughput_img_s"] or None),
            indent=2) + "\n")
    return meta


def _save(family, model: nn.Module, folder: Path) -> None:
    """The backbone (the family's format) plus what the method keeps beside it (``save_extra``:
    e.g. an image-text method's text encoder and tokenizer)."""
    family.save_weights(model.backbone, folder / "backbone.safetensors")
    if hasattr(model, "save_extra"):
        model.save_extra(folder)


def run(cfg: PretrainConfig, *, progress: bool = True,
        on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Build the registered method ``cfg.method``, train it, write ``cfg.out_dir``; returns meta."""
    from components.models.backbones import get_backbone

    spec = get_method(cfg.method)
    spec.check_backbone(cfg.backbone)
    family = get_backbone(cfg.backbone)
    seed_everything(cfg.seed)
    model = spec.build(cfg)
    describe = getattr(model, "describe", None)
    return train_and_write(
        cfg, model, data=spec.data,
        save=lambda m, d: _save(family, m, d),
        extra=(lambda m, p: describe()) if describe else None,
        progress=progress, on_log=on_log)
