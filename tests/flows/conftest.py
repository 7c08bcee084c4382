"""Fixtures for the flow tests (helpers live in testkit/flows.py, shared with the benchmark)."""
from __future__ import annotations


import pytest

from testkit.flows import Processes, start_prefect_server


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A Prefect server on a free port with its own PREFECT_HOME, for the whole session."""
    procs = Processes()
    try:
        yield start_prefect_server(tmp_path_factory.mktemp("prefect-server"), procs)
    finally:
        procs.stop_all()
