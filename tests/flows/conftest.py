"""Fixtures for the flow tests (helpers live in flowkit.py, shared with the benchmark)."""
from __future__ import annotations

from pathlib import Path

import pytest

from flowkit import Processes, base_env, make_toy, start_prefect_server


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """(toy project, env): a git + DVC project with the toy stages; no Prefect server."""
    project = tmp_path / "toy"
    env = base_env(tmp_path / "state", project)
    return make_toy(project, env), env


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A Prefect server on a free port with its own PREFECT_HOME, for the whole session."""
    procs = Processes()
    try:
        yield start_prefect_server(tmp_path_factory.mktemp("prefect-server"), procs)
    finally:
        procs.stop_all()
