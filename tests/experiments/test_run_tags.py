"""``$VITDET_RUN_TAGS``: extra tags on every stage run (how experiments label their runs)."""
from __future__ import annotations

import json
import uuid

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from components.tracking import runs
from components.tracking.runs import RUN_TAGS_ENV, env_run_tags, stage_run

PARAMS = {"seed": 0, "data": {"out": ""}}


@pytest.fixture
def isolated(monkeypatch):
    exp = f"exp-tags-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(runs.PIPELINE_ENV, f"pid-{uuid.uuid4().hex[:8]}")
    return exp


def test_stage_run_applies_env_tags_and_explicit_tags_win(isolated, monkeypatch):
    monkeypatch.setenv(RUN_TAGS_ENV, json.dumps({"experiment": "fpn", "variant": "single",
                                                 "seed": "1", "resumed_from": "env"}))
    with stage_run("finetune", PARAMS, experiment=isolated, tags={"resumed_from": "arg"}) as run:
        run_id = run.info.run_id
    tags = MlflowClient().get_run(run_id).data.tags
    assert (tags["experiment"], tags["variant"], tags["seed"]) == ("fpn", "single", "1")
    assert tags["resumed_from"] == "arg"
    assert tags["stage"] == "finetune" and tags["run_role"] == "stage"


def test_no_env_tags_means_no_extra_tags(isolated, monkeypatch):
    monkeypatch.delenv(RUN_TAGS_ENV, raising=False)
    assert env_run_tags() == {}
    with stage_run("evaluate", PARAMS, experiment=isolated) as run:
        run_id = run.info.run_id
    assert "experiment" not in MlflowClient().get_run(run_id).data.tags


@pytest.mark.parametrize("raw, why", [("{experiment: fpn}", "not valid JSON"),
                                      ('["fpn"]', "JSON object of string"),
                                      ('{"seed": 1}', "JSON object of string")])
def test_invalid_env_tags_fail_before_any_run(isolated, monkeypatch, raw, why):
    monkeypatch.setenv(RUN_TAGS_ENV, raw)
    with pytest.raises(ValueError, match=why):
        with stage_run("finetune", PARAMS, experiment=isolated):
            pass
    assert mlflow.active_run() is None
    assert MlflowClient().get_experiment_by_name(isolated) is None  # nothing was created
