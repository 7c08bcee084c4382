"""Experiments tests: the suite's temp MLflow store (tests/conftest.py), the shared tiny set."""
from __future__ import annotations

import os

import pytest

from testkit.finetune import shared_tiny_dataset


@pytest.fixture(scope="module", autouse=True)
def mlflow_store():
    """Re-assert the suite's temp sqlite store (another module may have changed the URI); job
    processes inherit it through ``MLFLOW_TRACKING_URI``."""
    import mlflow

    from components.common.env import PROJECT_ROOT

    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert uri.startswith("sqlite:///") and str(PROJECT_ROOT / "mlruns") not in uri, uri
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="session")
def tiny_ds(tmp_path_factory):
    """Validated 6/3/3-image synthetic set (shared with tests/train and tests/evaluate)."""
    return shared_tiny_dataset(tmp_path_factory.getbasetemp())
