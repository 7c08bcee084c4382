"""``attention``: backbone attention ablation (paper Table 3).

Windowed attention is cheap but has no cross-window interaction; the paper adds a few global
blocks (``hybrid``: windowed + global at every d/4 block, 4 in ViT-B), or makes every block
global, optionally with activation checkpointing to fit memory. Columns: test APbox, peak
training memory, average training iteration time and average inference time per image.
"""
from __future__ import annotations

from typing import Any, Mapping

from components.experiments.registry import (BarChart, Column, Variant, pick_variants,
                                             register_experiment)

VARIANTS: dict[str, dict[str, Any]] = {
    "windowed": {"model.attention": "windowed", "model.activation_checkpointing": False},
    "hybrid": {"model.attention": "hybrid", "model.activation_checkpointing": False},
    "global_checkpointing": {"model.attention": "global", "model.activation_checkpointing": True},
    "global": {"model.attention": "global", "model.activation_checkpointing": False},
}


@register_experiment(
    "attention", title="windowed vs global attention: accuracy, memory, time", paper="Table 3",
    description=__doc__.split("\n\n", 1)[1],
    defaults={"variants": list(VARIANTS)},
    columns=(Column("bbox_mAP", "APbox"), Column("peak_train_mem_mib", "peak train mem (MiB)", ".0f"),
             Column("train_iter_s", "train iter (s)", ".3f"),
             Column("infer_s_per_img", "inference (s/img)", ".3f")),
    charts=(BarChart("memory.png", "peak training memory", ("peak_train_mem_mib",), "MiB"),
            BarChart("time.png", "training iteration and inference time",
                     ("train_iter_s", "infer_s_per_img"), "seconds")))
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """One variant per entry of ``experiments.attention.variants``."""
    return pick_variants("attention", section["variants"], VARIANTS,
                         lambda name, overrides: Variant(name, dict(overrides)))
