"""Load and save plain-ViT backbone weights safely (safetensors / ``weights_only`` state_dicts).

Why our own loader: pretraining stages (MAE / MoCo v3 in mmpretrain, timm or the original
repos) name and shape things differently from the detection backbone, and mmengine's
``Pretrained`` init unpickles with full trust. :func:`load_backbone_weights`

1. reads ``.safetensors`` or a ``.pth/.pt`` with ``torch.load(weights_only=True)``;
2. unwraps containers (``state_dict`` / ``model`` / ``module`` entries; ``module.``,
   ``backbone.``, ``encoder.``, ``base_encoder.``, ``net.`` prefixes: keys outside the
   chosen prefix are ignored, e.g. an MAE decoder under ``neck.``);
3. renames mmpretrain ``VisionTransformer`` keys to ours (timm and MAE names already match);
4. drops pretraining-only keys (cls/mask tokens, final norms, heads, decoders) as *ignored*;
5. strips cls/extra tokens from ``pos_embed`` and resizes it bicubically to our pretraining
   grid; resizes rel-pos tables linearly; any other shape mismatch raises ``ValueError``
   naming the key and both shapes (or is skipped and reported with ``strict_shapes=False``);
6. returns a :class:`LoadReport` (loaded count, missing, unexpected, ignored, interpolated).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from components.common.atomic import write_safetensors_atomic
from components.models.vit import resize_pos_embed

__all__ = ["LoadReport", "load_backbone_weights", "save_backbone_weights", "read_state_dict",
           "normalize_keys"]

_CONTAINER_KEYS = ("state_dict", "model", "module")
_PREFIXES = ("module.", "backbone.", "encoder.", "base_encoder.", "net.")
_BACKBONE_ROOTS = ("blocks.", "layers.", "patch_embed.", "pos_embed")
# mmpretrain VisionTransformer / MAEViT / MoCoV3ViT -> ours (timm / MAE naming).
_MMPRETRAIN_RENAMES = (
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.attn\.gamma1\.weight$", r"blocks.\1.ls1.gamma"),
    (r"^layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.ffn\.gamma2\.weight$", r"blocks.\1.ls2.gamma"),
)
# Parts of pretraining models the detection backbone deliberately lacks.
_IGNORED = re.compile(r"^(cls_token|dist_token|mask_token|reg_token|norm\.|fc_norm\.|ln1\.|ln2\."
                      r"|pre_norm\.|head\.|heads\.|pre_logits\.|decoder|neck\.|projector|predictor)")
_EXTRA_TOKENS = ("cls_token", "dist_token")


@dataclass
class LoadReport:
    """What :func:`load_backbone_weights` did. ``interpolated`` maps key -> (from, to) shape."""

    path: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    interpolated: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        total = self.loaded + len(self.missing) + len(self.mismatched)
        parts = [f"loaded {self.loaded}/{total} backbone tensors from {self.path}"]
        for key, (src, dst) in self.interpolated.items():
            parts.append(f"resized {key} {tuple(src)} -> {tuple(dst)}")
        for name in ("missing", "unexpected", "mismatched", "ignored"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... (+{len(keys) - 8})" if len(keys) > 8 else "")
                parts.append(f"{name} ({len(keys)}): {shown}")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``), unwrapped
    from ``state_dict`` / ``model`` / ``module`` container entries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {path} "
                                "(set model.checkpoint in params.yaml, or '' for random init)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj: object = load_file(str(path), device="cpu")
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict (mapping of names to tensors), "
                         f"got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def normalize_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Strip wrapper prefixes and rename mmpretrain keys; returns (state, keys outside the prefix)."""
    dropped: list[str] = []
    while not any(k.startswith(_BACKBONE_ROOTS) for k in state):
        prefix = next((p for p in _PREFIXES if any(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        dropped += [k for k in state if not k.startswith(prefix)]
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _MMPRETRAIN_RENAMES:
            new, n = re.subn(pattern, repl, key)
            if n:
                key = new
                break
        renamed[key] = value
    return renamed, dropped


def _pos_embed_grid(src: torch.Tensor, extra_tokens: int) -> torch.Tensor:
    """Checkpoint pos_embed -> ``(1, g*g, C)`` without cls/extra tokens (square grid assumed)."""
    if src.ndim == 4:  # (1, h, w, C)
        return src.reshape(1, -1, src.shape[-1])
    n = src.shape[1]
    for extra in dict.fromkeys((extra_tokens, 0, 1, 2)):
        side = math.isqrt(n - extra) if n > extra else 0
        if side * side == n - extra:
            return src[:, extra:]
    raise ValueError(f"pos_embed: cannot read {n} positions as a square grid plus cls tokens")


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    out = F.interpolate(table.t().unsqueeze(0).float(), size=length, mode="linear",
                        align_corners=False)
    return out.squeeze(0).t().to(table.dtype)


def _shape_error(key: str, src: torch.Size, dst: torch.Size, why: str = "") -> ValueError:
    return ValueError(f"checkpoint tensor {key!r} has shape {tuple(src)} but the backbone expects "
                      f"{tuple(dst)}{why}: the checkpoint is for a different model size/patch "
                      "(check model.size / model.patch_size in params.yaml)")


def load_backbone_weights(backbone: nn.Module, path: str | Path, *,
                          strict_shapes: bool = True) -> LoadReport:
    """Load a pretraining checkpoint into a :class:`components.models.vit.ViT` (see module doc).

    Missing and unexpected keys are reported, not fatal; the caller decides (the ViT logs the
    report). With ``strict_shapes=False`` un-resizable tensors are skipped into ``.mismatched``.
    """
    raw = read_state_dict(path)
    state, outside = normalize_keys(raw)
    report = LoadReport(path=str(path), ignored=sorted(outside))
    extra_tokens = sum(t in state for t in _EXTRA_TOKENS)
    target = backbone.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    order = {k: i for i, k in enumerate(target)}  # model order: the first error is predictable
    for key in sorted(state, key=lambda k: order.get(k, len(order))):
        value = state[key]
        if key not in target:
            (report.ignored if _IGNORED.match(key) else report.unexpected).append(key)
            continue
        want = target[key].shape
        if key == "pos_embed":
            if value.shape[-1] != want[-1]:
                err = _shape_error(key, value.shape, want, " (embed dim differs)")
                if strict_shapes:
                    raise err
                report.mismatched.append(key)
                continue
            grid = _pos_embed_grid(value, extra_tokens)
            side = math.isqrt(grid.shape[1])
            dst = getattr(backbone, "pretrain_grid", (math.isqrt(want[1]),) * 2)
            if grid.shape != want:
                report.interpolated[key] = (tuple(value.shape), tuple(want))
                grid = resize_pos_embed(grid, (side, side), dst).reshape(want)
            elif grid.shape != value.shape:
                report.interpolated[key] = (tuple(value.shape), tuple(want))
            value = grid
        elif ".rel_pos_" in key and value.shape != want and value.shape[1:] == want[1:]:
            report.interpolated[key] = (tuple(value.shape), tuple(want))
            value = _resize_rel_pos(value, want[0])
        elif value.shape != want:
            if strict_shapes:
                raise _shape_error(key, value.shape, want)
            report.mismatched.append(key)
            continue
        to_load[key] = value
    backbone.load_state_dict(to_load, strict=False)
    report.loaded = len(to_load)
    report.missing = sorted(k for k in target if k not in to_load and k not in report.mismatched)
    report.unexpected.sort()
    report.ignored.sort()
    return report


def save_backbone_weights(backbone: nn.Module, path: str | Path) -> Path:
    """Write the backbone's state_dict as ``.safetensors`` (atomically: temp file + rename)."""
    return write_safetensors_atomic(path, backbone.state_dict(),
                                    metadata={"format": "pt", "writer": "components.models.weights"})
