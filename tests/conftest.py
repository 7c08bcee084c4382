"""Suite-wide isolation: tests never write into the project's own MLflow/Prefect/DVC state."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_STATE = Path(tempfile.mkdtemp(prefix="vitdet-tests-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STATE / 'mlflow.db'}"
os.environ.setdefault("PREFECT_HOME", str(_STATE / "prefect"))
os.environ.setdefault("VITDET_PIPELINE_ID", "pytest")
os.environ.setdefault("MPLBACKEND", "Agg")

from components.common.env import apply_defaults  # noqa: E402

apply_defaults()
