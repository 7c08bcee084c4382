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


import pytest  # noqa: E402


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """(toy project, env): a git + DVC project with the toy stages (the real stage names, tiny
    commands); no Prefect server. Used by tests/flows and tests/common (stage workspaces)."""
    from testkit.flows import base_env, make_toy

    project = tmp_path / "toy"
    env = base_env(tmp_path / "state", project)
    return make_toy(project, env), env
