"""What a pipeline run shows its user when it ends: rendered Markdown, tables and MLflow links.

Orchestrator-independent rendering (``flows/tasks.py`` only hands the results to Prefect's
artifact API): the validation report with its verdict, the promotion decision with links into
the MLflow UI, the evaluation metrics and per-stage timings as table rows, and the tags that
link the pipeline's MLflow parent run back to the orchestrator's run and the DVC experiment.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = ["MAX_MARKDOWN", "mlflow_ui_url", "read_json", "validation_markdown", "metric_rows",
           "stage_rows", "pipeline_links", "decision_markdown"]

MAX_MARKDOWN = 60_000  # characters of a report shown inline


def mlflow_ui_url() -> str:
    return os.environ.get("VITDET_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def validation_markdown(root: Path, failed: bool, error: Exception | None = None) -> str:
    """The gate's ``results/validation/report.md`` under a verdict heading (truncated)."""
    report = Path(root) / "results" / "validation" / "report.md"
    head = ("# Validation FAILED: the pipeline stopped before training\n\n" if failed
            else "# Validation passed\n\n")
    if report.exists():
        body = report.read_text()
        if len(body) > MAX_MARKDOWN:
            body = body[:MAX_MARKDOWN] + f"\n\n... truncated; full report: {report}\n"
    else:
        body = f"No report was written ({report} missing). Stage output:\n\n```\n{error}\n```\n"
    return head + body


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``{metric, value}`` rows of the numeric entries of a metrics.json."""
    return [{"metric": k, "value": v} for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)]


def stage_rows(runs: Iterable[Any]) -> list[dict[str, Any]]:
    """``{stage, ran, seconds}`` rows of :class:`components.common.stages.StageRun` s."""
    return [{"stage": r.stage, "ran": r.ran, "seconds": round(r.seconds, 2)} for r in runs]


def _store_exists() -> bool:
    """False for a local sqlite store that was never created (no stage logged anything):
    looking runs up would create an empty database as a side effect."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def pipeline_links(pipeline_id: str, decision: Mapping[str, Any], info: Mapping[str, Any],
                   warn: Callable[[str], None] = print) -> dict[str, Any]:
    """MLflow UI links of the pipeline's parent run, the evaluated run and the model version;
    tags the parent run with the orchestrator run id, the data hash, the DVC experiment and
    the overrides (``info`` keys ``flow_run_id``, ``data_hash``, ``experiment``, ``overrides``)."""
    ui = mlflow_ui_url()
    links: dict[str, Any] = {"mlflow_parent_run": None}
    if _store_exists():
        from mlflow.tracking import MlflowClient

        from components.tracking.runs import parent_run_id

        client = MlflowClient()
        parent = parent_run_id(pipeline_id)
        links["mlflow_parent_run"] = parent
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
                warn(f"MLflow run {run_id} from decision.json not found: {exc}")
    if decision.get("model_name") and decision.get("version"):
        links["model_version_url"] = (f"{ui}/#/models/{decision['model_name']}/versions/"
                                      f"{decision['version']}")
    return links


def decision_markdown(decision: Mapping[str, Any], links: Mapping[str, Any],
                      info: Mapping[str, Any]) -> str:
    """The promotion decision (``decision.json``) as Markdown with links into MLflow."""
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
