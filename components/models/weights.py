"""Load and save backbone weights safely (safetensors / ``weights_only`` state dicts).

Why our own loader: pretraining code (ours, mmpretrain, timm, the original repos) names and
shapes things differently from the detection backbone, and mmengine's ``Pretrained`` init
unpickles with full trust. :func:`load_state` is the family-independent part:

1. reads ``.safetensors`` or a ``.pth/.pt`` with ``torch.load(weights_only=True)``;
2. unwraps containers (``state_dict`` / ``model`` / ``module`` entries; ``module.``,
   ``backbone.``, ``encoder.``, ``base_encoder.``, ``net.`` prefixes: keys outside the chosen
   prefix are ignored, e.g. an MAE decoder under ``neck.``);
3. lets the backbone family rename keys (``prepare``) and fit each tensor to the module's
   shape (``fit``: e.g. the ViT resizes position embeddings); a shape it cannot fit raises
   ``ValueError`` naming the key and both shapes (or, with ``strict_shapes=False``, is
   skipped into ``.mismatched``);
4. sorts keys the module lacks into *ignored* (pretraining-only parts: heads, decoders,
   projectors, cls/mask tokens, final norms) and *unexpected* (anything else);
5. returns a :class:`LoadReport` (loaded count, missing, unexpected, ignored, interpolated).

:func:`load_backbone_weights` finds the module's family in the backbone registry and runs its
loader (:meth:`components.models.backbones.BackboneFamily.load_weights`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from components.common.atomic import write_safetensors_atomic

__all__ = ["LoadReport", "load_state", "load_backbone_weights", "save_backbone_weights",
           "read_state_dict", "normalize_keys", "shape_error", "PRETRAINING_ONLY"]

_CONTAINER_KEYS = ("state_dict", "model", "module")
_PREFIXES = ("module.", "backbone.", "encoder.", "base_encoder.", "net.")
_BACKBONE_ROOTS = ("blocks.", "layers.", "patch_embed.", "pos_embed", "conv1.", "stem.", "layer1.")
# Parts of pretraining models that no detection backbone has.
PRETRAINING_ONLY = re.compile(
    r"^(cls_token|dist_token|mask_token|reg_token|norm\.|fc_norm\.|ln1\.|ln2\.|pre_norm\.|head\."
    r"|heads\.|pre_logits\.|fc\.|decoder|neck\.|projector|predictor)")

Fit = Callable[[str, torch.Tensor, torch.Size, dict], torch.Tensor]
Prepare = Callable[[dict], dict]


@dataclass
class LoadReport:
    """What a load did. ``interpolated`` maps key -> (from, to) shape."""

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
    """Strip wrapper prefixes; returns (state, keys outside the chosen prefix)."""
    dropped: list[str] = []
    while not any(k.startswith(_BACKBONE_ROOTS) for k in state):
        prefix = next((p for p in _PREFIXES if any(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        dropped += [k for k in state if not k.startswith(prefix)]
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state, dropped


def shape_error(key: str, src: torch.Size, dst: torch.Size, why: str = "") -> ValueError:
    return ValueError(f"checkpoint tensor {key!r} has shape {tuple(src)} but the backbone expects "
                      f"{tuple(dst)}{why}: the checkpoint is for a different model size/patch "
                      "(check model.backbone / model.size / model.patch_size in params.yaml)")


def _same_shape(key: str, value: torch.Tensor, want: torch.Size, state: dict) -> torch.Tensor:
    if value.shape != want:
        raise shape_error(key, value.shape, want)
    return value


def load_state(module: nn.Module, path: str | Path, *, prepare: Prepare | None = None,
               fit: Fit | None = None, strict_shapes: bool = True) -> LoadReport:
    """Load a checkpoint into ``module`` (see the module docstring).

    ``prepare(state)`` renames keys; ``fit(key, value, target_shape, state)`` returns the tensor
    to load (a different shape than the checkpoint's is recorded as *interpolated*) or raises
    ``ValueError``. Missing and unexpected keys are reported, not fatal: the caller decides.
    """
    state, outside = normalize_keys(read_state_dict(path))
    if prepare is not None:
        state = prepare(state)
    fit = fit or _same_shape
    report = LoadReport(path=str(path), ignored=sorted(outside))
    target = module.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    order = {k: i for i, k in enumerate(target)}  # model order: the first error is predictable
    for key in sorted(state, key=lambda k: order.get(k, len(order))):
        value = state[key]
        if key not in target:
            (report.ignored if PRETRAINING_ONLY.match(key) else report.unexpected).append(key)
            continue
        want = target[key].shape
        try:
            fitted = fit(key, value, want, state)
        except ValueError:
            if strict_shapes:
                raise
            report.mismatched.append(key)
            continue
        if fitted.shape != value.shape:
            report.interpolated[key] = (tuple(value.shape), tuple(want))
        to_load[key] = fitted
    module.load_state_dict(to_load, strict=False)
    report.loaded = len(to_load)
    report.missing = sorted(k for k in target if k not in to_load and k not in report.mismatched)
    report.unexpected.sort()
    report.ignored.sort()
    return report


def load_backbone_weights(backbone: nn.Module, path: str | Path, *,
                          strict_shapes: bool = True) -> LoadReport:
    """Load ``path`` into ``backbone`` with its registered family's loader."""
    from components.models.backbones import family_of

    return family_of(backbone).load_weights(backbone, path, strict_shapes=strict_shapes)


def save_backbone_weights(backbone: nn.Module, path: str | Path) -> Path:
    """Write the backbone's state_dict as ``.safetensors`` (atomically: temp file + rename)."""
    return write_safetensors_atomic(path, backbone.state_dict(),
                                    metadata={"format": "pt", "writer": "components.models.weights"})
