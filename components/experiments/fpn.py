"""``fpn``: the ViT-to-detector adapter ablation (paper Table 2).

The plain ViT has one stride-16 feature map. The paper compares building a multi-scale pyramid
from blocks at several depths (``multiscale``: blocks d/4..d resampled to strides 4-32, then an
FPN), from the last block alone (``simple``), and no pyramid at all (``single``: stride 16
only). Everything else is fixed; the columns are test APbox and APmask (+ AP50).
"""
from __future__ import annotations

from typing import Any, Mapping

from components.experiments.registry import Column, Variant, pick_variants, register_experiment

ADAPTERS = {
    "multiscale": "multi-scale FPN from blocks d/4, d/2, 3d/4, d",
    "simple": "FPN fed by the last block only (resampled to 4 scales)",
    "single": "no FPN: the last block's stride-16 map",
}


@register_experiment(
    "fpn", title="FPN / feature-pyramid ablation", paper="Table 2",
    description=__doc__.split("\n\n", 1)[1],
    defaults={"variants": list(ADAPTERS)},
    columns=(Column("bbox_mAP", "APbox"), Column("segm_mAP", "APmask"),
             Column("bbox_mAP_50", "APbox50"), Column("segm_mAP_50", "APmask50")))
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """One variant per ``model.adapter`` layout listed in ``experiments.fpn.variants``."""
    return pick_variants(
        "fpn", section["variants"], ADAPTERS,
        lambda name, what: Variant(name, {"model.adapter": name}, {"adapter": what}))
