"""Run a stage's work inside its MLflow stage run: the one wrapper every stage CLI uses.

Why here (and MLflow imported lazily): stage CLIs accept ``--no-tracking`` on machines without
mlflow (the torch-only GPU box); with tracking on, a missing mlflow is a clear error naming the
fix, and every stage gets the same nested run (:func:`components.tracking.runs.stage_run`).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

__all__ = ["tracked"]

T = TypeVar("T")


def tracked(stage: str, params: Mapping[str, Any], work: Callable[[], T],
            log: Callable[[Any, T], None] | None = None) -> T:
    """``work()`` inside the stage run ``stage``; then ``log(mlflow, result)`` in the same run
    (metrics, tags, artifacts). Returns ``work``'s result."""
    try:
        import mlflow

        from components.tracking.runs import stage_run
    except ImportError as exc:
        raise SystemExit(f"MLflow tracking is unavailable ({exc}); install the project "
                         "environment (make setup) or pass --no-tracking") from None
    with stage_run(stage, dict(params)):
        result = work()
        if log is not None:
            log(mlflow, result)
    return result
