"""``mobilevit``: light-weight backbones under SSDLite (MobileViT paper, Table 1 analogue).

The MobileViT paper compares MobileViT-XXS / XS / S with CNN backbones (MobileNetV2 and
others) as SSDLite backbones: parameters against mAP. Here every variant is the same SSDLite
detector (``model.detector: ssdlite``, this experiment's recipe) on one backbone
(``model.backbone`` / ``model.size``), initialised as ``experiments.mobilevit.init`` says:
``random`` or ``supervised`` (our own multi-label classification pretraining of that backbone,
the analogue of the paper's ImageNet-1k classification models:
``dvc repro pretrain_supervised_mobile``). Columns: backbone and detector parameters, test
APbox / APbox50 and inference time per image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from components.experiments.registry import (BarChart, Column, Variant, VariantError,
                                             register_experiment)

SOURCE = ('Mehta, Rastegari: "MobileViT: Light-weight, General-purpose, and Mobile-friendly '
          'Vision Transformer", arXiv 2110.02178')
BACKBONES = ["mobilevit:xxs", "mobilevit:xs", "mobilevit:s", "mobilenetv2:1.0"]
INITS = ("random", "supervised")


def checkpoint_path(params: Mapping[str, Any], family: str, size: str) -> Path:
    """Where ``pretrain_supervised_mobile`` writes ``family``/``size``'s classification weights:
    ``<pretrain.out>/<family>_<size>/supervised/backbone.safetensors``."""
    from components.train.config import resolve_path

    out = str((params.get("pretrain") or {}).get("out") or "pretrained")
    return resolve_path(out) / f"{family}_{size}" / "supervised" / "backbone.safetensors"


def _parse(entry: str) -> tuple[str, str]:
    from components.models.backbones import BACKBONES as FAMILIES

    family, _, size = str(entry).partition(":")
    if family not in FAMILIES:
        raise ValueError(f"experiments.mobilevit.backbones: {entry!r}: unknown family "
                         f"{family!r}; known: {list(FAMILIES)} (write family:size)")
    FAMILIES[family].variant(size or next(iter(FAMILIES[family].variants)))
    return family, size or next(iter(FAMILIES[family].variants))


def check(variant: Variant, params: Mapping[str, Any]) -> None:
    """With ``init: supervised`` the classification-pretrained backbone must exist."""
    if variant.labels["init"] != "supervised":
        return
    path = checkpoint_path(params, variant.labels["family"], variant.labels["size"])
    if not path.is_file():
        raise VariantError(f"{variant.name}: pretrained backbone {path} not found; produce it "
                           "with `dvc repro pretrain_supervised_mobile` (or set "
                           "experiments.mobilevit.init: random)")


@register_experiment(
    "mobilevit", title="MobileViT vs CNN backbones under SSDLite", paper="Table 1",
    description=__doc__.split("\n\n", 1)[1], source=SOURCE,
    defaults={"backbones": list(BACKBONES), "init": "random"},
    columns=(Column("backbone_params_m", "backbone params (M)", ".2f"),
             Column("params_m", "detector params (M)", ".2f"),
             Column("bbox_mAP", "APbox"), Column("bbox_mAP_50", "APbox50"),
             Column("infer_s_per_img", "inference (s/img)", ".3f")),
    charts=(BarChart("params.png", "parameters (millions)", ("backbone_params_m", "params_m"),
                     "million parameters"),),
    check=check)
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """One SSDLite variant per ``family:size`` of ``experiments.mobilevit.backbones``."""
    init = str(section.get("init", "random"))
    if init not in INITS:
        raise ValueError(f"experiments.mobilevit.init: {init!r}; known: {list(INITS)}")
    out = []
    for entry in section["backbones"]:
        family, size = _parse(entry)
        overrides: dict[str, Any] = {"model.backbone": family, "model.size": size}
        if init == "supervised":
            overrides["model.checkpoint"] = str(checkpoint_path(params, family, size))
        out.append(Variant(f"{family}-{size}", overrides,
                           {"family": family, "size": size, "init": init}))
    return out
