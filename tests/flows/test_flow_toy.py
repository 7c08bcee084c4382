"""The pipeline flow end to end on a toy dvc.yaml (same stage names, second-long stages):
retries, artifacts, DVC skip on rerun, and the validation gate. Real stages: test_flow_e2e.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.flows import base_env, flow_run_id_from, flow_run_report, make_toy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api):
    tmp = tmp_path_factory.mktemp("toyflow")
    project = tmp / "toy"
    env = base_env(tmp / "state", project)
    env["PREFECT_API_URL"] = prefect_api
    env["TOY_FLAKY"] = str(tmp / "flaky")
    make_toy(project, env)
    return project, env


def run_flow(project: Path, env: dict, *args: str) -> tuple[int, str, dict | None]:
    proc = subprocess.run([sys.executable, "-m", "flows.pipeline", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    start = re.search(r"^\{$", proc.stdout, re.M)
    summary = json.loads(proc.stdout[start.start():]) if proc.returncode == 0 and start else None
    return proc.returncode, out, summary


def calls(root: Path) -> list[str]:
    return (root / "calls.log").read_text().split()


def test_transient_failure_is_retried_and_results_are_published(project, prefect_api):
    root, env = project
    Path(env["TOY_FLAKY"]).touch()  # finetune fails once with "Connection refused"
    rc, out, summary = run_flow(root, env)
    assert rc == 0, out[-4000:]
    assert calls(root) == ["prepare", "validate", "finetune", "finetune", "evaluate", "register"]
    assert [s["stage"] for s in summary["stages"]] == [
        "prepare", "push:dataset", "validate", "finetune", "evaluate", "register", "push:all"]
    assert summary["data_hash"].endswith(".dir") and not summary["isolated"]
    assert any((root / ".dvc-remote").rglob("*.dir")), "dataset not pushed to the DVC remote"

    report = flow_run_report(prefect_api, summary["flow_run_id"])
    assert report["state"] == "COMPLETED"
    arts = report["artifacts"]
    assert {"validation-report", "evaluation-metrics", "promotion-decision",
            "pipeline-stages"} <= set(arts)
    metrics = json.loads(arts["evaluation-metrics"].data)
    assert {"metric": "bbox_mAP", "value": 0.25} in metrics
    decision = arts["promotion-decision"].data
    assert "PROMOTED" in decision and summary["data_hash"] in decision
    assert "#/models/toy/versions/1" in decision


def test_unchanged_rerun_skips_every_stage(project):
    root, env = project
    before = calls(root)
    rc, out, summary = run_flow(root, env)
    assert rc == 0, out[-4000:]
    assert calls(root) == before, "a stage ran although nothing changed"
    assert not any(s["ran"] for s in summary["stages"] if not s["stage"].startswith("push:"))


def test_validation_failure_fails_the_flow_at_once(project, prefect_api):
    root, env = project
    params_before = (root / "params.yaml").read_bytes()
    rc, out, _ = run_flow(root, env, "--set", "data.source=corrupt")
    assert rc != 0
    flow_run_id = flow_run_id_from(out)
    ws = root / "runs" / "flows" / flow_run_id        # kept for inspection
    assert calls(ws) == ["prepare", "validate"], "retried, or went on past the failed gate"
    assert (root / "params.yaml").read_bytes() == params_before

    report = flow_run_report(prefect_api, flow_run_id)
    assert report["state"] == "FAILED"
    assert report["tasks"]["validate"] == "FAILED"
    assert not {"finetune", "evaluate", "register"} & set(report["tasks"])
    assert "Validation FAILED" in report["artifacts"]["validation-report"].data
    assert "source.txt says corrupt" in report["artifacts"]["validation-report"].data
    assert "promotion-decision" not in report["artifacts"]
