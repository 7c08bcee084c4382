"""Shared MLflow store and tiny model for the tracking tests.

The suite-wide conftest points ``MLFLOW_TRACKING_URI`` at a temp sqlite db; every module here
re-asserts it (another test may have called ``mlflow.set_tracking_uri``) and isolates itself
with unique experiment, pipeline and model names instead of a new db (table creation ~6 s).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # tiny_detector / tracking_helpers, also for builder strings
    sys.path.insert(0, str(HERE))

TINY_BUILDER = "tiny_detector:build"


@pytest.fixture(scope="module", autouse=True)
def mlflow_store():
    import mlflow

    uri = os.environ["MLFLOW_TRACKING_URI"]
    from components.common.env import PROJECT_ROOT

    assert uri.startswith("sqlite:///") and str(PROJECT_ROOT / "mlruns") not in uri, uri
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:  # never leak a run into the next module
        mlflow.end_run()


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """(config.py, model.safetensors) of the tiny test detector."""
    from safetensors.torch import save_file

    import tiny_detector

    root = tmp_path_factory.mktemp("tiny-model")
    config = root / "config.py"
    config.write_text("classes = ('a', 'b', 'c')\n")
    weights = root / "model.safetensors"
    save_file(tiny_detector.build(str(config)).state_dict(), str(weights))
    return config, weights


@pytest.fixture(scope="session")
def logged_tiny_model(tiny_model_files):
    """One logged tiny pyfunc model (``models:/m-...``) that registry tests register again and
    again: logging costs ~1-4 s, registering a version ~0.2 s."""
    import mlflow

    from components.tracking.pyfunc_model import log_detector_model
    from components.tracking.runs import ensure_experiment

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    with mlflow.start_run(experiment_id=ensure_experiment("tracking-tests-models")):
        info = log_detector_model(*tiny_model_files, name="model", builder=TINY_BUILDER)
    return info.model_uri
