"""Dataset validation gate (Great Expectations 1.x).

``validate_dataset(root, cfg, out)`` runs every registered suite whose files are present
(``suites/``: coco, openimages, imagetext, unlabeled), checks each referenced image file, writes
``report.html``/``report.md``/``summary.json`` and, on success only, ``validated.json``.

Attributes are imported lazily so ``python -m components.validation --help`` stays fast.
"""
from __future__ import annotations

from typing import Any

__all__ = ["MARKER", "Failure", "ValidationResult", "validate_dataset"]


def __getattr__(name: str) -> Any:
    if name in ("MARKER", "validate_dataset"):
        from components.validation import gate
        return getattr(gate, name)
    if name in ("Failure", "ValidationResult"):
        from components.validation import result
        return getattr(result, name)
    raise AttributeError(f"module 'components.validation' has no attribute {name!r}")
