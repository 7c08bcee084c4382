"""Pretraining configuration: ``params.yaml`` (``model.*``, ``seed``, ``pretrain.*``) with defaults.

Why defaults in code: the stage must run before (and without) a ``pretrain:`` block in
params.yaml; every value below is the documented default and appears in
``components/pretrain/params_proposal.yaml``. Resolution order for one method (later wins):
:data:`SHARED_DEFAULTS` -> ``pretrain.*`` shared keys -> the method's registered ``defaults`` ->
``pretrain.<method>.*``. A method-level value always beats the shared one: ``pretrain.lr`` is
the fallback for methods that do not set their own ``lr`` (MAE, MoCo v3, ... register theirs),
``pretrain.mae.lr`` sets MAE's. ``max_steps``, ``device``, ``precision`` are set by no method,
so ``pretrain.max_steps=2`` caps every method (smoke runs). ``pretrain.backbone`` /
``pretrain.size`` name the backbone the stages pretrain when it is not the detector's
(``model.backbone``): the ViT the paper's methods need while the CPU default detects with a CNN.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from components.common.env import PROJECT_ROOT, project_relative

__all__ = ["SHARED_DEFAULTS", "PretrainConfig", "config_from_params", "with_defaults",
           "resolve_path"]

# Training keys every method understands (the driver's knobs), CPU-sized.
SHARED_DEFAULTS: dict[str, Any] = {
    "out": "pretrained",         # stage outputs: <out>/<method>/
    "backbone": "",              # family to pretrain; "" = model.backbone
    "size": "",                  # its variant; "" = model.size
    "device": "cpu",             # cpu | cuda | auto
    "precision": "fp32",         # fp32 | bf16 (autocast)
    "epochs": 4,
    "batch_size": 32,
    "lr": 1.0e-3,
    "min_lr": 1.0e-5,
    "weight_decay": 0.05,
    "betas": [0.9, 0.95],
    "warmup_epochs": 1.0,
    "grad_clip": 3.0,            # max grad norm; 0 = off
    "drop_path": 0.0,
    "num_workers": 0,
    "threads": 0,                # torch CPU threads; 0 = torch default (1 helps on a busy machine)
    "max_images": 0,             # 0 = all images
    "max_steps": 0,              # 0 = epochs * steps_per_epoch; >0 caps (smoke runs)
    "log_every": 1,              # MLflow metric logging period in steps
}
_SHARED = set(SHARED_DEFAULTS)


def resolve_path(path: str | Path, root: Path = PROJECT_ROOT) -> Path:
    """Relative paths in params.yaml are relative to the project root (as DVC runs them)."""
    path = Path(path)
    return path if path.is_absolute() else root / path


@dataclass
class PretrainConfig:
    """Everything one pretraining run needs. Tests build it directly with tiny ``arch``.

    ``arch`` overrides single fields of the size table (``embed_dim``, ``depth``, ``num_heads``,
    ``mlp_ratio``): tiny test models only; stages use ``model.size``.
    ``options`` are the method's own keys (registered defaults merged with params).
    """

    method: str
    data_root: Path
    out_dir: Path
    backbone: str = "vit"           # model.backbone: the registered backbone family
    size: str = "tiny"
    patch_size: int = 16
    img_size: int = 128
    seed: int = 0
    arch: dict[str, Any] = field(default_factory=dict)
    epochs: float = SHARED_DEFAULTS["epochs"]
    batch_size: int = SHARED_DEFAULTS["batch_size"]
    lr: float = SHARED_DEFAULTS["lr"]
    min_lr: float = SHARED_DEFAULTS["min_lr"]
    weight_decay: float = SHARED_DEFAULTS["weight_decay"]
    betas: tuple[float, float] = tuple(SHARED_DEFAULTS["betas"])
    warmup_epochs: float = SHARED_DEFAULTS["warmup_epochs"]
    grad_clip: float = SHARED_DEFAULTS["grad_clip"]
    precision: str = SHARED_DEFAULTS["precision"]
    device: str = SHARED_DEFAULTS["device"]
    drop_path: float = SHARED_DEFAULTS["drop_path"]
    num_workers: int = SHARED_DEFAULTS["num_workers"]
    threads: int = SHARED_DEFAULTS["threads"]
    max_images: int = SHARED_DEFAULTS["max_images"]
    max_steps: int = SHARED_DEFAULTS["max_steps"]
    log_every: int = SHARED_DEFAULTS["log_every"]
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_root, self.out_dir = Path(self.data_root), Path(self.out_dir)
        self.betas = tuple(float(b) for b in self.betas)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"pretrain.precision must be fp32 or bf16, got {self.precision!r}")
        if self.img_size % self.patch_size:
            raise ValueError(f"model.pretrain_img_size {self.img_size} must be a multiple of "
                             f"model.patch_size {self.patch_size}")

    def opt(self, name: str) -> Any:
        """A method option; a missing one is a bug in the method's registered defaults."""
        try:
            return self.options[name]
        except KeyError:
            raise KeyError(f"pretrain.{self.method}.{name} has no value and no default") from None

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view (for meta.json)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["data_root"], out["out_dir"] = (project_relative(self.data_root),
                                            project_relative(self.out_dir))
        out["betas"] = list(self.betas)
        return out


def with_defaults(params: Mapping[str, Any], section: str, defaults: Mapping[str, Any]) -> dict:
    """``params`` with ``pretrain.<section>`` and the shared ``pretrain.*`` keys filled in.

    Returns a deep copy; keys already in ``params`` win. Used before ``--set`` overrides are
    applied so ``--set pretrain.mae.mask_ratio=0.6`` works on a params.yaml without the block.
    """
    out = copy.deepcopy(dict(params))
    pre = out.setdefault("pretrain", {}) or {}
    out["pretrain"] = pre
    for key, value in SHARED_DEFAULTS.items():
        pre.setdefault(key, copy.deepcopy(value))
    sub = pre.setdefault(section, {}) or {}
    pre[section] = sub
    for key, value in defaults.items():
        sub.setdefault(key, copy.deepcopy(value))
    return out


def _section(params: Mapping[str, Any], method: str, defaults: Mapping[str, Any]) -> dict:
    pre = dict(params.get("pretrain") or {})
    own = dict(pre.get(method) or {})
    unknown = sorted(set(own) - _SHARED - set(defaults))
    if unknown:
        raise KeyError(f"params.yaml pretrain.{method}: unknown keys {unknown}; known: "
                       f"{sorted(_SHARED | set(defaults))}")
    merged = dict(SHARED_DEFAULTS)
    merged.update({k: v for k, v in pre.items() if k in _SHARED})
    merged.update(defaults)
    merged.update(own)
    return merged


def config_from_params(params: Mapping[str, Any], method: str, defaults: Mapping[str, Any],
                       root: Path = PROJECT_ROOT) -> PretrainConfig:
    """Build the config of ``method`` from a params dict (see the module docstring)."""
    model = params.get("model") or {}
    data = params.get("data") or {}
    merged = _section(params, method, defaults)
    shared = {k: merged[k] for k in _SHARED if k not in ("out", "backbone", "size")}
    return PretrainConfig(
        method=method,
        data_root=resolve_path(data.get("out", "data/dataset"), root),
        out_dir=resolve_path(merged["out"], root) / method,
        backbone=str(merged["backbone"] or model.get("backbone", "vit")),
        size=str(merged["size"] or model.get("size", "tiny")),
        patch_size=int(model.get("patch_size", 16)),
        img_size=int(model.get("pretrain_img_size", 128)),
        seed=int(params.get("seed", 0)),
        options={k: merged[k] for k in defaults if k not in _SHARED},
        **shared,
    )
