"""Prefect tasks: thin wrappers that run one dvc.yaml stage or publish its results.

Wiring only: what a stage does lives in ``components/``; how a stage is run (``dvc repro
--single-item``, failure classification, isolated workspaces) in
:mod:`components.common.stages`. Retries: a :class:`~components.common.stages.StageError`
marked transient (I/O, network, tracking server, DVC lock, exit 75) is retried with
exponential backoff; anything else fails at once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from components.common import stages
from components.common.stages import StageError, StageRun
from components.pipeline import stage_env

__all__ = ["REGISTRY_TAG", "run_stage", "register", "validate", "push", "publish_results",
           "mlflow_ui_url"]

RETRIES = int(os.environ.get("VITDET_STAGE_RETRIES", "2"))
RETRY_DELAY_S = float(os.environ.get("VITDET_STAGE_RETRY_DELAY_S", "10"))
_MAX_MD = 60_000  # characters of a report shown inline in an artifact


def mlflow_ui_url() -> str:
    return os.environ.get("VITDET_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def _transient(task, task_run, state) -> bool:
    """Retry condition: only failures the stage runner classified as transient."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:
        return False
    return isinstance(exc, StageError) and exc.transient


# DVC decides what is unchanged (dvc.lock), so Prefect's own result cache stays off.
_retrying = dict(retries=RETRIES, retry_delay_seconds=exponential_backoff(RETRY_DELAY_S),
                 retry_jitter_factor=0.2, retry_condition_fn=_transient, cache_policy=NO_CACHE)


def _env(pipeline_id: str) -> dict[str, str]:
    # Built inside the task, never passed as a parameter: the environment may hold secrets
    # and task parameters are shown in the Prefect UI.
    return stage_env(pipeline_id)


def _done(log, result: StageRun) -> None:
    log.info("stage %s %s in %.1f s", result.stage,
             "ran" if result.ran else "unchanged, skipped", result.seconds)


@task(name="stage", task_run_name="{stage}", **_retrying)
def run_stage(stage: str, root: str, pipeline_id: str) -> StageRun:
    """``dvc repro --single-item <stage>`` in the run's workspace."""
    log = get_run_logger()
    result = stages.repro(stage, root, _env(pipeline_id), on_line=log.info)
    _done(log, result)
    return result


# One registry writer at a time (the promotion gate assumes it): a tag concurrency limit of 1,
# created by `infra/scripts/servers.sh pool`; without the limit the tag is inert.
REGISTRY_TAG = "vitdet-registry"
register = run_stage.with_options(name="register", tags=[REGISTRY_TAG])


@task(name="validate", task_run_name="{stage}", **_retrying)
def validate(stage: str, root: str, pipeline_id: str) -> StageRun:
    """The validation gate. Its report becomes the ``validation-report`` artifact, pass or fail;
    a failure is deterministic: the flow stops here, nothing is trained or registered."""
    log = get_run_logger()
    try:
        result = stages.repro(stage, root, _env(pipeline_id), on_line=log.info)
    except StageError as exc:
        if not exc.transient:
            _report_artifact(Path(root), failed=True, error=exc)
        raise
    _report_artifact(Path(root), failed=False)
    _done(log, result)
    return result


def _report_artifact(root: Path, failed: bool, error: Exception | None = None) -> None:
    report = root / "results" / "validation" / "report.md"
    head = ("# Validation FAILED: the pipeline stopped before training\n\n" if failed
            else "# Validation passed\n\n")
    if report.exists():
        body = report.read_text()
        if len(body) > _MAX_MD:
            body = body[:_MAX_MD] + f"\n\n... truncated; full report: {report}\n"
    else:
        body = f"No report was written ({report} missing). Stage output:\n\n```\n{error}\n```\n"
    create_markdown_artifact(head + body, key="validation-report",
                             description="Great Expectations gate (results/validation/report.md)")


@task(name="dvc-push", task_run_name="dvc-push {label}", **_retrying)
def push(root: str, pipeline_id: str, targets: list[str], label: str = "all") -> StageRun:
    """``dvc push`` of ``targets`` (stage names; empty = everything) to the default remote."""
    return stages.dvc_push(root, targets, _env(pipeline_id), on_line=get_run_logger().info,
                           label=label)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@task(name="publish-results", task_run_name="publish-results", retries=RETRIES,
      retry_delay_seconds=RETRY_DELAY_S, cache_policy=NO_CACHE)
def publish_results(root: str, pipeline_id: str, info: Mapping[str, Any], runs: list[StageRun],
                    metrics_file: str = "results/evaluate/metrics.json",
                    decision_file: str = "results/register/decision.json") -> dict[str, Any]:
    """Artifacts ``evaluation-metrics`` (table), ``promotion-decision`` (markdown with MLflow
    links) and ``pipeline-stages`` (table), and tags on the MLflow parent run linking back to
    this flow run, the DVC experiment and the overrides. Returns the links."""
    log = get_run_logger()
    ws = Path(root)
    metrics = _read_json(ws / metrics_file) or {}
    decision = _read_json(ws / decision_file) or {}
    ui = mlflow_ui_url()
    links: dict[str, Any] = {"mlflow_parent_run": None}
    if _store_exists():
        from mlflow.tracking import MlflowClient

        links.update(_mlflow_links(MlflowClient(), ui, pipeline_id, decision, info, log))
    if decision.get("model_name") and decision.get("version"):
        links["model_version_url"] = (f"{ui}/#/models/{decision['model_name']}/versions/"
                                      f"{decision['version']}")

    rows = [{"metric": k, "value": v} for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if rows:
        create_table_artifact(rows, key="evaluation-metrics",
                              description=f"{metrics_file} ({len(rows)} metrics)")
    create_markdown_artifact(_decision_markdown(decision, links, info), key="promotion-decision",
                             description="Registry promotion decision and MLflow links")
    create_table_artifact(
        [{"stage": r.stage, "ran": r.ran, "seconds": round(r.seconds, 2)} for r in runs],
        key="pipeline-stages", description="Each dvc command of this run; ran=False: unchanged")
    return links


def _store_exists() -> bool:
    """False for a local sqlite store that was never created (no stage logged anything):
    looking runs up would create an empty database as a side effect."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def _mlflow_links(client, ui: str, pipeline_id: str, decision: Mapping[str, Any],
                  info: Mapping[str, Any], log) -> dict[str, Any]:
    """MLflow UI links of the pipeline's parent run and the evaluated run; tags the parent."""
    from components.tracking.runs import parent_run_id

    parent = parent_run_id(pipeline_id)
    links: dict[str, Any] = {"mlflow_parent_run": parent}
    if parent:
        exp = client.get_run(parent).info.experiment_id
        links["mlflow_parent_url"] = f"{ui}/#/experiments/{exp}/runs/{parent}"
        tags = {"prefect.flow_run_id": info.get("flow_run_id") or "",
                "dvc.data_hash": info.get("data_hash") or "",
                "dvc.experiment": info.get("experiment") or "",
                "overrides": json.dumps(info.get("overrides") or {}, sort_keys=True)}
        for key, value in tags.items():
            client.set_tag(parent, key, str(value))
    if run_id := decision.get("run_id"):
        try:
            exp = client.get_run(run_id).info.experiment_id
            links["mlflow_eval_url"] = f"{ui}/#/experiments/{exp}/runs/{run_id}"
        except Exception as exc:  # a decision.json restored from an older store
            log.warning("MLflow run %s from decision.json not found: %s", run_id, exc)
    return links


def _decision_markdown(decision: Mapping[str, Any], links: Mapping[str, Any],
                       info: Mapping[str, Any]) -> str:
    if not decision:
        head = "# No promotion decision\n\nThe register stage wrote no decision.json."
    else:
        verdict = "PROMOTED to champion" if decision.get("promoted") else "not promoted"
        head = (f"# {decision.get('model_name', 'model')} version {decision.get('version', '?')}: "
                f"{verdict}\n\n{decision.get('reason', '')}")
    lines = [head, "", "| | |", "|---|---|"]

    def row(name: str, value: Any) -> None:
        if value not in (None, ""):
            lines.append(f"| {name} | {value} |")

    if url := links.get("mlflow_parent_url"):
        row("MLflow pipeline run", f"[{links['mlflow_parent_run']}]({url})")
    else:
        row("MLflow pipeline run", "none: every stage was unchanged, nothing ran "
            "(results below are from the run that produced them)")
    if url := links.get("mlflow_eval_url"):
        row("MLflow evaluation run", f"[{decision.get('run_id')}]({url})")
    if url := links.get("model_version_url"):
        row("registered model version", f"[{decision['model_name']} v{decision['version']}]({url})")
    for key in ("champion", "previous_champion", "metric_key", "candidate_metric",
                "champion_metric", "model_uri", "decided_at"):
        row(key, decision.get(key))
    row("DVC data hash", f"`{info.get('data_hash')}`" if info.get("data_hash") else None)
    row("DVC experiment", info.get("experiment") and f"`{info['experiment']}` "
        f"(`dvc exp show`, `dvc exp apply {info['experiment']}`)")
    row("overrides", info.get("overrides") and f"`{json.dumps(info['overrides'], sort_keys=True)}`")
    row("params file", info.get("params_path"))
    return "\n".join(lines) + "\n"
