"""The pretraining loop shared by every method: AdamW, linear warmup + cosine, bf16, clipping.

Why our own ~100-line loop and not mmengine's Runner: pretraining has no evaluation, no
detection data pipeline and no checkpoint hooks to reuse; the pretrainers are plain
``nn.Module`` s (no mmengine ``BaseModel`` / data preprocessor), and the same loop must run on the
torch-only GPU box. The Runner would add a config layer and its pickle-based checkpoints for
nothing here. Resume is not supported: CPU-default runs take minutes (re-run the stage).

Contract with a pretrainer: ``model(batch)["loss"]`` is minimised; other scalar outputs are
logged; ``model.after_step(step, total_steps)`` runs after each optimizer step if defined.
"""
from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from components.pretrain.config import PretrainConfig

__all__ = ["History", "seed_everything", "resolve_device", "param_groups", "lr_at", "total_steps",
           "fit"]


@dataclass
class History:
    """Per-step training record; ``throughput`` is images per second of loop wall time."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    images: int = 0
    train_s: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.step)

    @property
    def throughput(self) -> float:
        return self.images / self.train_s if self.train_s > 0 else 0.0

    def final_loss(self, window: int = 10) -> float | None:
        """Mean loss of the last ``window`` steps (a single step is noisy)."""
        tail = self.loss[-window:]
        return statistics.fmean(tail) if tail else None


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch generator for the data loader."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # torch-only machine
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"pretrain.device={name!r} but no CUDA device is visible; use cpu or auto")
    return torch.device(name)


_NO_DECAY_NAMES = ("pos_embed", "mask_token", "cls_token")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decay for weight matrices; none for biases, norms, tokens, pos_embed.

    Frozen parameters (``requires_grad=False``, e.g. MoCo's frozen patch projection, MAE's fixed
    sin-cos pos_embed, the momentum encoder) are left out.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.split(".")[-1] in _NO_DECAY_NAMES:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, total: int, warmup: int, base: float, min_lr: float) -> float:
    """Linear warmup from 0 over ``warmup`` steps, then half-cosine from ``base`` to ``min_lr``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def total_steps(cfg: PretrainConfig, steps_per_epoch: int) -> int:
    if cfg.max_steps > 0:
        return int(cfg.max_steps)
    return max(1, math.ceil(cfg.epochs * steps_per_epoch))


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def fit(model: nn.Module, loader: Iterable[dict], cfg: PretrainConfig, *,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        progress: bool = True) -> History:
    """Train ``model`` for ``total_steps(cfg, len(loader))`` optimizer steps; returns the history.

    Raises ``FloatingPointError`` naming the step on a non-finite loss.
    """
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    model.to(device).train()
    steps_per_epoch = len(loader)  # type: ignore[arg-type]
    if steps_per_epoch == 0:
        raise SystemExit(f"pretrain {cfg.method}: no batches (fewer images than "
                         f"batch_size={cfg.batch_size} with drop_last); lower batch_size")
    total = total_steps(cfg, steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch)) if total > 1 else 0
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    params = [p for g in opt.param_groups for p in g["params"]]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    hist = History()
    bar = tqdm(total=total, desc=f"pretrain {cfg.method}", unit="step", dynamic_ncols=True,
               disable=not progress)
    start = time.perf_counter()
    step = 0
    while step < total:
        for batch in loader:
            if step >= total:
                break
            lr = lr_at(step, total, warmup, cfg.lr, cfg.min_lr)
            for group in opt.param_groups:
                group["lr"] = lr
            batch = _to(batch, device)
            with autocast:
                out = model(batch)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"pretrain {cfg.method}: loss is {loss.item()} at step {step}; lower "
                    f"pretrain.{cfg.method}.lr (now {cfg.lr}) or set pretrain.grad_clip")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            metrics = {k: float(v.detach()) for k, v in out.items()
                       if isinstance(v, torch.Tensor) and v.ndim == 0}
            if cfg.grad_clip > 0:
                metrics["grad_norm"] = float(nn.utils.clip_grad_norm_(params, cfg.grad_clip))
            opt.step()
            if hasattr(model, "after_step"):
                model.after_step(step, total)
            n = next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))
            hist.images += n
            hist.step.append(step)
            hist.loss.append(metrics["loss"])
            hist.lr.append(lr)
            for k, v in metrics.items():
                if k != "loss":
                    hist.extra.setdefault(k, []).append(v)
            if on_log is not None and (step % max(1, cfg.log_every) == 0 or step == total - 1):
                on_log(step, {**metrics, "lr": lr})
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{lr:.2e}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    hist.train_s = time.perf_counter() - start
    bar.close()
    return hist
