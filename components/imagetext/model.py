"""The two UniCL towers and their files: image (any registered backbone) and text.

Shapes::

    imgs (B, 3, S, S) -> backbone pooled (B, C) -> LayerNorm -> Linear -> u (B, D), |u| = 1
    ids, mask (B, L)  -> TextEncoder (B, W)     -> Linear             -> v (B, D), |v| = 1

The image tower's trunk is the detection backbone itself, pooled by its family's
``pooled_features`` (the backbone contract), so ``backbone.safetensors`` also initialises a
detector. The learnable logit scale (log of tau, init ``log(1/0.07)``) lives here too.

Files (:meth:`UniCL.save_extra`, written beside ``backbone.safetensors`` by the pretraining
stage): ``text_encoder.safetensors`` (text transformer + projection), ``image_head.safetensors``
(norm + projection + logit scale), ``tokenizer.json``, ``unicl.json`` (what :func:`load_towers`
needs to rebuild both towers). Imports of :mod:`components.pretrain` stay inside functions:
that package imports this one (the ``unicl`` method).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from components.imagetext.text import TextConfig, TextEncoder

__all__ = ["FORMAT", "UniCL", "build_towers", "load_towers"]

FORMAT = 1
TEXT_FILE, IMAGE_HEAD_FILE, TOKENIZER_FILE, CONFIG_FILE = (
    "text_encoder.safetensors", "image_head.safetensors", "tokenizer.json", "unicl.json")


class UniCL(nn.Module):
    """Image tower + text tower + logit scale.

    Args:
        backbone: the image trunk (a registered backbone family's module).
        image_dim: its pooled width C (``family.embedding_dim``).
        text_cfg: the text tower.
        embed_dim: the shared embedding width D.
        logit_scale_init: tau at init (the parameter is ``log(tau)``).
    """

    def __init__(self, backbone: nn.Module, image_dim: int, text_cfg: TextConfig,
                 embed_dim: int = 128, logit_scale_init: float = 1 / 0.07) -> None:
        super().__init__()
        from components.models.backbones import family_of

        self.backbone = backbone
        self.family = family_of(backbone)
        self.image_norm = nn.LayerNorm(image_dim)
        self.image_proj = nn.Linear(image_dim, embed_dim, bias=False)
        self.text = TextEncoder(text_cfg)
        self.text_proj = nn.Linear(text_cfg.width, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale_init)))
        nn.init.normal_(self.image_proj.weight, std=image_dim ** -0.5)
        nn.init.normal_(self.text_proj.weight, std=text_cfg.width ** -0.5)
        self.embed_dim = embed_dim

    @property
    def text_cfg(self) -> TextConfig:
        return self.text.cfg

    def image_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Backbone pooled features ``(B, C)`` -> unit embeddings ``(B, D)``."""
        return F.normalize(self.image_proj(self.image_norm(pooled)), dim=-1)

    def encode_image(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised images -> ``(B, D)`` unit embeddings."""
        return self.image_head(self.family.pooled_features(self.backbone, imgs))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids, mask (B, L)`` -> ``(B, D)`` unit embeddings."""
        return F.normalize(self.text_proj(self.text(ids, mask)), dim=-1)

    # ------------------------------------------------------------------ files
    def _text_state(self) -> dict[str, torch.Tensor]:
        return {f"text.{k}": v for k, v in self.text.state_dict().items()} | {
            f"text_proj.{k}": v for k, v in self.text_proj.state_dict().items()}

    def _image_head_state(self) -> dict[str, torch.Tensor]:
        return ({f"image_norm.{k}": v for k, v in self.image_norm.state_dict().items()}
                | {f"image_proj.{k}": v for k, v in self.image_proj.state_dict().items()}
                | {"logit_scale": self.logit_scale.detach()})

    def save_heads(self, folder: Path, tokenizer, config: Mapping[str, Any]) -> None:
        """Write everything but the backbone into ``folder`` (the stage writes that one)."""
        from components.common.atomic import write_safetensors_atomic, write_text_atomic

        folder = Path(folder)
        write_safetensors_atomic(folder / TEXT_FILE, self._text_state())
        write_safetensors_atomic(folder / IMAGE_HEAD_FILE, self._image_head_state())
        tokenizer.save(str(folder / TOKENIZER_FILE))
        record = {"format": FORMAT, "embed_dim": self.embed_dim, "text": self.text_cfg.as_dict(),
                  "tau": float(self.logit_scale.detach().exp()), **config}
        write_text_atomic(folder / CONFIG_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def load_heads(self, folder: Path) -> None:
        """Load the two head files of :meth:`save_heads` (exact keys and shapes)."""
        from safetensors.torch import load_file

        state = {**load_file(str(Path(folder) / TEXT_FILE)),
                 **load_file(str(Path(folder) / IMAGE_HEAD_FILE))}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise ValueError(f"{folder}: UniCL heads do not match the config (missing {missing}, "
                             f"unexpected {unexpected})")


def build_towers(image: Mapping[str, Any], text_cfg: TextConfig, embed_dim: int,
                 logit_scale_init: float = 1 / 0.07, drop_path: float = 0.0) -> UniCL:
    """Fresh towers. ``image``: ``{"family", "size", "img_size", "patch_size", "arch"}``; the
    backbone comes from the backbone contract as pretraining builds it."""
    from components.models.backbones import get_backbone
    from components.pretrain.common import build_backbone, pretraining_config

    args = (image["size"], int(image["img_size"]), int(image["patch_size"]), float(drop_path),
            dict(image.get("arch") or {}))
    family = str(image["family"])
    backbone = build_backbone(*args, family=family)
    dim = get_backbone(family).embedding_dim(pretraining_config(*args, family=family))
    return UniCL(backbone, dim, text_cfg, embed_dim, logit_scale_init)


def load_towers(folder: str | Path) -> tuple[UniCL, Any, dict]:
    """``(towers, tokenizer, unicl.json)`` of a pretraining output folder (eval mode, CPU)."""
    from components.imagetext.tokenizer import load_tokenizer

    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: run the pretrain_unicl stage "
                                "(python -m components.pretrain --method unicl)")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: format {cfg.get('format')!r}, this code reads {FORMAT}")
    towers = build_towers(cfg["image"], TextConfig(**cfg["text"]), int(cfg["embed_dim"]))
    report = towers.family.load_weights(towers.backbone, folder / "backbone.safetensors")
    if report.missing or report.unexpected or report.mismatched:
        raise ValueError(f"{folder}/backbone.safetensors: {report}")
    towers.load_heads(folder)
    return towers.eval(), load_tokenizer(folder / TOKENIZER_FILE), cfg
