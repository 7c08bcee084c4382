"""The figures ``dvc metrics show`` prints: one small vocabulary shared by every stage.

Why a vocabulary: DVC prints one row per metrics file and one column per key of any file, so
files with their own keys (configs, hashes, paths, timings) made a table hundreds of columns
wide. Every metrics file holds only keys from :data:`COLUMNS`, and detailed records stay in
plain outputs next to them (``evaluation.json``, ``summary.json``, ``meta.json``,
``results.json``). A paper experiment writes one file per variant (``metrics/<variant>.json``),
so each variant is a row.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["AP_KEYS", "COLUMNS", "ap_row", "row"]

# COCO metric (components/evaluate/metrics.py names) -> column
AP_KEYS = {"bbox_mAP": "AP", "bbox_mAP_50": "AP50", "bbox_mAP_75": "AP75",
           "segm_mAP": "mask_AP", "segm_mAP_50": "mask_AP50"}
COLUMNS = (*AP_KEYS.values(), "AP_std", "probe_mAP", "seeds", "failures", "warnings",
           "final_loss", "img_per_s", "kept", "removed",
           "DR10", "DR100", "DR1000",   # BING proposals' detection recall at 10/100/1000 boxes
           "zs_heldout_acc", "linear_probe_acc")  # image-text transfer (top-1 accuracy)


def row(**values: Any) -> dict[str, float]:
    """A metrics file's content: known columns only, finite numbers rounded to 4 digits."""
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise KeyError(f"not a DVC metrics column: {unknown} (components/common/dvc_metrics.py)")
    out = {}
    for key in COLUMNS:
        v = values.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = round(float(v), 4) if isinstance(v, float) else v
    return out


def ap_row(metrics: Mapping[str, Any], **extra: Any) -> dict[str, float]:
    """The AP columns of a COCO metrics mapping (``bbox_mAP``...), plus ``extra`` columns."""
    return row(**{col: metrics.get(key) for key, col in AP_KEYS.items()}, **extra)
