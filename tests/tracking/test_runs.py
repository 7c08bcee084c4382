"""stage_run: one parent per pipeline id, nested stage runs, params, statuses, lineage."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from components.common.env import PROJECT_ROOT
from components.common.params import flatten
from components.tracking import runs
from components.tracking.runs import find_failed_run, parent_run_id, stage_run

from tracking_helpers import unique

PARAMS = {
    "seed": 0,
    "data": {"out": "", "synthetic": {"num_images": {"train": 4, "val": 2}, "scale_range": [0.1, 0.5]}},
    "finetune": {"lr": 0.0002, "betas": [0.9, 0.999], "work_dir": "runs/x"},
    "notes": "x" * 7000,  # over MLflow's 6000-char param limit
}


@pytest.fixture
def pipeline(monkeypatch):
    """A fresh experiment and pipeline id per test."""
    pid = unique("pid")
    monkeypatch.setenv(runs.PIPELINE_ENV, pid)
    return unique("exp"), pid


def _started(exp: str) -> str:
    """Run a trivial first stage; return the pipeline's parent run id."""
    with stage_run("prepare", PARAMS, experiment=exp):
        pass
    return parent_run_id(experiment=exp)


def _children(client: MlflowClient, parent: str) -> dict:
    exp = client.get_run(parent).info.experiment_id
    found = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent}'")
    return {r.info.run_name: r for r in found}


def test_parent_and_nested_runs_with_params_metrics_and_lineage(pipeline, tmp_path):
    exp, pid = pipeline
    client = MlflowClient()
    ds = tmp_path / "dataset"
    ds.mkdir()
    (ds / "a.txt").write_text("hello")
    (ds / "manifest.json").write_text(json.dumps({"content_hash": "c0ffee"}))
    params = {**PARAMS, "data": {**PARAMS["data"], "out": str(ds)}}

    with stage_run("prepare", params, experiment=exp, tags={"extra": "yes"}) as run:
        parent = parent_run_id(experiment=exp)
        assert client.get_run(parent).info.status == "RUNNING"
        assert mlflow.active_run().info.run_id == run.info.run_id
        mlflow.log_metric("inside", 3.0)
        time.sleep(0.05)

    assert parent_run_id(pid, experiment=exp) == parent
    p = client.get_run(parent)
    assert p.info.status == "FINISHED" and p.info.run_name == f"pipeline-{pid}"
    assert p.data.tags["pipeline_id"] == pid and p.data.tags["run_role"] == "pipeline"

    r = client.get_run(run.info.run_id)
    assert r.info.status == "FINISHED" and r.info.run_name == "prepare"
    assert r.data.tags["mlflow.parentRunId"] == parent
    assert r.data.tags["pipeline_id"] == pid and r.data.tags["stage"] == "prepare"
    assert r.data.tags["extra"] == "yes" and r.data.tags["exit_status"] == "success"
    # params: dotted names exactly as flatten() gives them, values as MLflow strings
    expected = {k: str(v) for k, v in flatten(params).items() if k != "notes"}
    assert {k: v for k, v in r.data.params.items() if k != "notes"} == expected
    assert r.data.params["finetune.betas"] == "[0.9, 0.999]"
    assert len(r.data.params["notes"]) == 6000 and r.data.params["notes"].endswith("[truncated 7000 chars]")
    assert r.data.tags["params.truncated"] == "notes"
    # lineage + resource metrics
    assert r.data.tags["pkg.mlflow"] == mlflow.__version__ and "git.dirty" in r.data.tags
    assert r.data.tags["data.dvc_hash"].endswith(".dir") and r.data.tags["data.content_hash"] == "c0ffee"
    assert r.data.metrics["inside"] == 3.0
    assert r.data.metrics["stage.wall_time_s"] >= 0.05
    assert r.data.metrics["stage.peak_rss_mb"] > 50  # a python process with torch/mlflow loaded


def test_stages_share_parent_failure_marks_both_failed_and_resume(pipeline):
    exp, pid = pipeline
    client = MlflowClient()
    with stage_run("prepare", PARAMS, experiment=exp):
        pass
    with pytest.raises(ValueError, match="boom"):
        with stage_run("finetune", PARAMS, experiment=exp) as failed:
            raise ValueError("boom")
    parent = parent_run_id(experiment=exp)
    assert client.get_run(parent).info.status == "FAILED"
    f = client.get_run(failed.info.run_id)
    assert f.info.status == "FAILED" and f.data.tags["exit_status"] == "failed"
    assert f.data.tags["error"] == "ValueError: boom"
    assert "stage.wall_time_s" in f.data.metrics

    # resume: the failed run is found (in this pipeline and across pipelines) and tagged
    assert find_failed_run("finetune", pid, experiment=exp) == failed.info.run_id
    assert find_failed_run("finetune", experiment=exp) == failed.info.run_id
    assert find_failed_run("prepare", pid, experiment=exp) is None
    with stage_run("finetune", PARAMS, experiment=exp,
                   tags={"resumed_from": failed.info.run_id}) as resumed:
        pass
    assert client.get_run(resumed.info.run_id).data.tags["resumed_from"] == failed.info.run_id
    assert client.get_run(parent).info.status == "FINISHED"  # the pipeline recovered
    kids = client.search_runs([client.get_run(parent).info.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.info.run_name for r in kids) == ["finetune", "finetune", "prepare"]
    assert len(client.search_runs([kids[0].info.experiment_id],
                                  f"tags.pipeline_id = '{pid}' AND tags.run_role = 'pipeline'")) == 1


def test_stale_running_run_is_found_and_marked_killed(pipeline):
    exp, pid = pipeline
    client = MlflowClient()
    parent = _started(exp)
    # a stage whose process died (SIGKILL/OOM) leaves its run RUNNING: simulate one
    dead = client.create_run(client.get_run(parent).info.experiment_id, run_name="finetune",
                             tags={"pipeline_id": pid, "run_role": "stage", "stage": "finetune",
                                   "mlflow.parentRunId": parent})
    assert find_failed_run("finetune", experiment=exp, include_running=False) is None
    assert find_failed_run("finetune", experiment=exp) == dead.info.run_id
    with stage_run("finetune", PARAMS, experiment=exp, tags={"resumed_from": dead.info.run_id}):
        assert client.get_run(dead.info.run_id).info.status == "KILLED"


def test_exit_statuses(pipeline):
    exp, _ = pipeline
    client = MlflowClient()
    with pytest.raises(SystemExit):
        with stage_run("validate", PARAMS, experiment=exp) as ok:
            raise SystemExit(0)
    assert client.get_run(ok.info.run_id).info.status == "FINISHED"
    with pytest.raises(SystemExit):
        with stage_run("validate", PARAMS, experiment=exp) as bad:
            raise SystemExit(1)
    assert client.get_run(bad.info.run_id).info.status == "FAILED"
    with pytest.raises(KeyboardInterrupt):
        with stage_run("validate", PARAMS, experiment=exp) as killed:
            raise KeyboardInterrupt
    r = client.get_run(killed.info.run_id)
    assert r.info.status == "KILLED" and r.data.tags["exit_status"] == "killed"


def test_run_ended_by_someone_else_still_gets_final_status(pipeline):
    """mmengine's MLflowVisBackend.close() calls mlflow.end_run() (FINISHED) inside the stage."""
    exp, _ = pipeline
    client = MlflowClient()
    with pytest.raises(RuntimeError):
        with stage_run("finetune", PARAMS, experiment=exp) as run:
            mlflow.end_run()
            raise RuntimeError("after the logger closed")
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_refuses_to_start_inside_another_active_run(pipeline):
    exp, _ = pipeline
    with mlflow.start_run(experiment_id=runs.ensure_experiment(exp)):
        with pytest.raises(RuntimeError, match="already active"):
            with stage_run("prepare", PARAMS, experiment=exp):
                pass


def test_adhoc_pipeline_id(monkeypatch):
    monkeypatch.delenv(runs.PIPELINE_ENV, raising=False)
    a = runs.current_pipeline_id(PARAMS)
    monkeypatch.delenv(runs.PIPELINE_ENV)
    assert runs.current_pipeline_id(PARAMS) == a and a.startswith("adhoc-")
    monkeypatch.delenv(runs.PIPELINE_ENV)
    assert runs.current_pipeline_id({**PARAMS, "seed": 1}) != a
    assert os.environ[runs.PIPELINE_ENV] != a  # exported for child processes
    monkeypatch.setenv(runs.PIPELINE_ENV, "bad id with spaces")
    with pytest.raises(ValueError):
        runs.current_pipeline_id(PARAMS)


_CHILD = textwrap.dedent("""
    import sys, time
    import mlflow
    from components.tracking.runs import stage_run
    params = {"seed": 0, "data": {"out": ""}}
    with stage_run(sys.argv[1], params, experiment=sys.argv[2]) as run:
        print(run.info.run_id, flush=True)
        if sys.argv[1] == "hang":
            time.sleep(60)
""")


def _child(stage: str, exp: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, stage, exp], cwd=PROJECT_ROOT,
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_other_process_joins_parent_and_sigterm_closes_runs_killed(pipeline):
    exp, pid = pipeline
    client = MlflowClient()
    parent = _started(exp)
    # another stage process of the same pipeline (same $VITDET_PIPELINE_ID), then SIGTERM
    hang = _child("hang", exp)
    hang_run = hang.stdout.readline().strip()
    assert hang_run, hang.stderr.read()
    assert client.get_run(parent).info.status == "RUNNING"
    hang.send_signal(signal.SIGTERM)
    hang.wait(timeout=60)
    assert hang.returncode == -signal.SIGTERM  # still dies "by SIGTERM" for its supervisor

    kids = _children(client, parent)
    assert set(kids) == {"prepare", "hang"} and kids["hang"].info.run_id == hang_run
    h = client.get_run(hang_run)
    assert h.info.status == "KILLED" and h.data.tags["exit_status"] == "killed"
    assert h.data.tags["pipeline_id"] == pid
    assert client.get_run(parent).info.status == "KILLED"
