"""Prefect tasks: thin wrappers that run one dvc.yaml stage or publish its results.

Wiring only: what a stage does lives in ``components/``; how a stage is run (``dvc repro
--single-item``, failure classification, isolated workspaces) in
:mod:`components.common.stages`. Retries: a :class:`~components.common.stages.StageError`
marked transient (I/O, network, tracking server, DVC lock, exit 75) is retried with
exponential backoff; anything else fails at once.
"""
from __future__ import annotations

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
from components.tracking import publish
from components.tracking.publish import mlflow_ui_url

__all__ = ["REGISTRY_TAG", "run_stage", "register", "validate", "push", "publish_results",
           "mlflow_ui_url"]

RETRIES = int(os.environ.get("VITDET_STAGE_RETRIES", "2"))
RETRY_DELAY_S = float(os.environ.get("VITDET_STAGE_RETRY_DELAY_S", "10"))


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
    create_markdown_artifact(publish.validation_markdown(root, failed, error),
                             key="validation-report",
                             description="Great Expectations gate (results/validation/report.md)")


@task(name="dvc-push", task_run_name="dvc-push {label}", **_retrying)
def push(root: str, pipeline_id: str, targets: list[str], label: str = "all") -> StageRun:
    """``dvc push`` of ``targets`` (stage names; empty = everything) to the default remote."""
    return stages.dvc_push(root, targets, _env(pipeline_id), on_line=get_run_logger().info,
                           label=label)


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
    metrics = publish.read_json(ws / metrics_file) or {}
    decision = publish.read_json(ws / decision_file) or {}
    links = publish.pipeline_links(pipeline_id, decision, info, warn=log.warning)
    rows = publish.metric_rows(metrics)
    if rows:
        create_table_artifact(rows, key="evaluation-metrics",
                              description=f"{metrics_file} ({len(rows)} metrics)")
    create_markdown_artifact(publish.decision_markdown(decision, links, info),
                             key="promotion-decision",
                             description="Registry promotion decision and MLflow links")
    create_table_artifact(publish.stage_rows(runs), key="pipeline-stages",
                          description="Each dvc command of this run; ran=False: unchanged")
    return links
