"""Tiny configs for the pretraining tests (32-d, 4 blocks, 64 px = a 4x4 patch grid)."""
from __future__ import annotations

from pathlib import Path

from components.pretrain.config import SHARED_DEFAULTS, PretrainConfig
from components.pretrain.registry import get_method

TINY_ARCH = {"embed_dim": 32, "depth": 4, "num_heads": 2}
IMG = 64
# Method options shrunk to the tiny model (everything else: the registered defaults).
TINY_OPTIONS = {
    "mocov3": {"mlp_dim": 32, "proj_dim": 16},
    "mae": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
    "tokenizer": {"codebook_size": 16, "code_dim": 8, "hidden": 8},
    # two-view methods: GT boxes (the tiny set has no BING cache), an object policy
    "mocov2": {"mlp_dim": 32, "proj_dim": 16, "queue_size": 16,
               "crops": {"policy": "obj_obj_dilate", "boxes": "gt"}},
    "byol": {"mlp_dim": 32, "proj_dim": 16, "crops": {"policy": "obj_scene", "boxes": "gt"}},
}
# Methods whose data comes from another stage the tiny set lacks (their own tests cover them).
NEEDS_STAGE_DATA = {"unicl": "curated image-text pairs (tests/imagetext)"}


def tiny_cfg(method: str, data_root: Path, out: Path, *, defaults: dict | None = None,
             steps: int = 2, **options) -> PretrainConfig:
    """Config for ``steps`` optimizer steps of batch 4 with a constant lr (no warmup)."""
    defaults = get_method(method).defaults if defaults is None else defaults
    opts = {k: v for k, v in defaults.items() if k not in SHARED_DEFAULTS}
    opts.update(TINY_OPTIONS.get(method, {}))
    opts.update(options)
    lr = defaults.get("lr", SHARED_DEFAULTS["lr"])
    return PretrainConfig(method=method, data_root=data_root, out_dir=out / method, img_size=IMG,
                          arch=dict(TINY_ARCH), batch_size=4, max_steps=steps, warmup_epochs=0,
                          lr=lr, min_lr=lr, options=opts)
