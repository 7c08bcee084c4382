"""Project-local state and telemetry defaults.

Why: Prefect, MLflow and DVC otherwise write state into the user's home or /var/tmp and
phone home. Every entry point calls :func:`apply_defaults` first so state lives inside the
project and telemetry is off, unless the user already set the variable.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def defaults(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Environment defaults for this project (values only apply where unset)."""
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / ".dvc" / "site-cache"),
        "GX_ANALYTICS_ENABLED": "false",
    }


def apply_defaults(root: Path = PROJECT_ROOT) -> None:
    for key, value in defaults(root).items():
        os.environ.setdefault(key, value)


def project_relative(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (records such as metrics.json
    and meta.json stay valid in any clone), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)
