"""End to end through Prefect deployments with the real stages, in an isolated project copy.

infra/scripts/servers.sh starts a Prefect server (own PREFECT_HOME, free port), the `local`
process pool, the local/nightly deployments and a worker; `prefect deployment run
'pipeline/local' --watch` then runs the built-in synthetic dataset with a tiny configuration.
(a) completes: MLflow has the parent + one nested run per stage, a registered version holds
the champion alias, the Prefect artifacts exist, the run is a DVC experiment and the copy's
working tree is unchanged. (b) a corrupted COCO import fails at validation: Failed flow run,
no training, no new model version, champion unchanged.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testkit.flows import base_env, copy_project, flow_run_id_from, flow_run_report, free_port

pytestmark = pytest.mark.slow

TINY = {
    "data.synthetic.num_images": {"train": 4, "val": 2, "test": 2, "unlabeled": 0},
    "data.synthetic.image_size": 128,
    "data.synthetic.objects_per_image": [1, 4],
    "finetune.img_size": 128,
    "finetune.epochs": 1,
    "finetune.batch_size": 2,
    "evaluate.num_visualizations": 1,
    "register.min_ap": 0.0,   # a 1-epoch model must still become the first champion
}
STAGES = ["prepare", "validate", "finetune", "evaluate", "register"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(project copy, env, api url): servers.sh up in the copy; servers.sh down + kill by PID after."""
    tmp = tmp_path_factory.mktemp("e2e")
    project = tmp / "project"
    project.mkdir()
    env = base_env(tmp / "state", project)
    port = free_port()
    env.update(PROJECT_ROOT=str(project), VENV=str(Path(sys.executable).parent.parent),
               PREFECT_PORT=str(port), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               VITDET_STAGE_RETRY_DELAY_S="2")
    copy_project(project, env)
    script = project / "infra" / "scripts" / "servers.sh"
    try:
        up = subprocess.run(["bash", str(script), "up"], cwd=project, env=env, capture_output=True,
                            text=True, timeout=400)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield project, env, env["PREFECT_API_URL"]
    finally:
        subprocess.run(["bash", str(script), "down"], cwd=project, env=env, capture_output=True,
                       timeout=120)
        for pid_file in (project / ".run").glob("*.pid"):  # belt and braces: by PID only
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass


def deployment_run(project: Path, env: dict, overrides: dict) -> tuple[int, str]:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "deployment", "run", "pipeline/local",
         "-p", f"overrides={json.dumps(overrides)}", "--watch", "--watch-timeout", "900"],
        cwd=project, env=env, capture_output=True, text=True, timeout=960)
    return proc.returncode, proc.stdout + proc.stderr


def mlflow_client(project: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def model_name(project: Path) -> str:
    """The registered model the register stage uses (register.model_name or the detector's)."""
    from components.tracking.cli import registered_model_name

    return registered_model_name(yaml.safe_load((project / "params.yaml").read_text()))


def registry_state(project: Path) -> tuple[list[str], str | None]:
    client, name = mlflow_client(project), model_name(project)
    versions = sorted(v.version for v in client.search_model_versions(f"name = '{name}'"))
    aliases = client.get_registered_model(name).aliases if versions else {}
    return versions, aliases.get("champion")


def test_a_deployment_run_trains_registers_and_publishes(stack):
    project, env, api = stack
    status_before = subprocess.run(["git", "status", "--porcelain"], cwd=project,
                                   capture_output=True, text=True).stdout
    rc, out = deployment_run(project, env, TINY)
    flow_run_id = flow_run_id_from(out)
    worker_log = (project / ".run" / "prefect-worker.log").read_text()
    assert rc == 0 and "Completed" in out, out[-3000:] + worker_log[-6000:]

    report = flow_run_report(api, flow_run_id)
    assert report["state"] == "COMPLETED"
    assert {"validation-report", "evaluation-metrics", "promotion-decision",
            "pipeline-stages"} <= set(report["artifacts"])
    decision_md = report["artifacts"]["promotion-decision"].data
    assert "http://127.0.0.1:5000/#/experiments/" in decision_md

    client = mlflow_client(project)
    exp = client.get_experiment_by_name("vitdet-pipeline")
    (parent,) = client.search_runs([exp.experiment_id], f"tags.pipeline_id = '{flow_run_id}' "
                                   "AND tags.run_role = 'pipeline'")
    children = client.search_runs([exp.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    logged = {r.data.tags["stage"] for r in children}
    # prepare/validate open no MLflow run (yet); every stage that does nests under the parent
    assert {"finetune", "evaluate", "register"} <= logged <= set(STAGES), logged
    assert all(r.info.status == "FINISHED" for r in children)
    assert parent.data.tags["prefect.flow_run_id"] == flow_run_id
    assert json.loads(parent.data.tags["overrides"])["finetune.epochs"] == 1
    assert parent.data.params["finetune.epochs"] == "1"    # the overridden value was logged
    assert parent.info.run_id in decision_md

    versions, champion = registry_state(project)
    assert versions and champion == versions[-1]
    assert f"#/models/{model_name(project)}/versions/{champion}" in decision_md

    exps = subprocess.run([sys.executable, "-m", "dvc", "exp", "list", "--name-only"], cwd=project,
                          env=env, capture_output=True, text=True, check=True).stdout.split()
    assert f"pipeline-{flow_run_id[:8]}" in exps
    assert any((project / ".dvc-remote").rglob("*.dir")), "dataset not pushed"
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                          text=True).stdout == status_before, "the working copy was modified"


def _corrupt_coco(project: Path, env: dict, out: Path) -> dict:
    """A tiny synthetic dataset exported as COCO, one box pushed outside its image."""
    subprocess.run([sys.executable, "-m", "components.data", "generate", "--out", str(out),
                    "--set", "data.synthetic.num_images={train: 4, val: 2, test: 2, unlabeled: 0}",
                    "--set", "data.synthetic.image_size=128"],
                   cwd=project, env=env, check=True, capture_output=True, text=True)
    anns = {split: out / "annotations" / f"instances_{split}.json" for split in ("train", "val", "test")}
    coco = json.loads(anns["train"].read_text())
    img = coco["images"][0]
    coco["annotations"][0].update(image_id=img["id"], bbox=[img["width"] - 2, 5, 60, 40])
    anns["train"].write_text(json.dumps(coco))
    return {"data.source": "coco", "data.coco.annotations": {k: str(v) for k, v in anns.items()},
            "data.coco.images": str(out / "images")}


def test_b_corrupted_dataset_fails_at_validation_without_training(stack, tmp_path):
    project, env, api = stack
    versions_before, champion_before = registry_state(project)
    overrides = {**TINY, **_corrupt_coco(project, env, tmp_path / "coco")}
    rc, out = deployment_run(project, env, overrides)
    assert rc != 0 and "Failed" in out, out[-3000:]
    flow_run_id = flow_run_id_from(out)

    report = flow_run_report(api, flow_run_id)
    assert report["state"] == "FAILED"
    assert report["tasks"].get("validate") == "FAILED", report["tasks"]
    assert not {"finetune", "evaluate", "register"} & set(report["tasks"])
    assert [t.run_count for t in report["task_runs"] if t.name == "validate"] == [1]  # no retry
    assert "Validation FAILED" in report["artifacts"]["validation-report"].data
    assert registry_state(project) == (versions_before, champion_before)
