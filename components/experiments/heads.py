"""``heads``: the paper's upgraded modules against the 2017 Mask R-CNN heads (Sec. 4).

The upgrades are BatchNorm after the FPN convolutions, a 2-conv RPN head, a box head of four
convs with BN and one linear layer, and BN in the mask head's convs (``model.heads``).
Variants: ``paper`` (all on), ``classic`` (all off) and ``no_<upgrade>`` (one switched off, the
rest on), so each module's share of the difference can be measured. Columns: test APbox,
APmask and the training iteration time the heavier heads cost.
"""
from __future__ import annotations

from typing import Any, Mapping

from components.experiments.registry import Column, Variant, pick_variants, register_experiment
from components.train.config import HEAD_UPGRADES

VARIANTS: dict[str, Any] = {
    "paper": "paper",
    "classic": "classic",
    **{f"no_{u}": {u: False} for u in HEAD_UPGRADES},
}


@register_experiment(
    "heads", title="upgraded heads vs 2017 Mask R-CNN heads", paper="Sec. 4 (upgraded modules)",
    description=__doc__.split("\n\n", 1)[1],
    defaults={"variants": ["paper", "classic"]},
    columns=(Column("bbox_mAP", "APbox"), Column("segm_mAP", "APmask"),
             Column("bbox_mAP_50", "APbox50"),
             Column("train_iter_s", "train iter (s)", ".3f")))
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """One variant per entry of ``experiments.heads.variants``."""
    return pick_variants("heads", section["variants"], VARIANTS,
                         lambda name, heads: Variant(name, {"model.heads": heads}))
