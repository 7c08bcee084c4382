"""One MLflow parent run per pipeline execution, one nested run per stage, across processes.

Why: the stages (prepare -> validate -> finetune -> evaluate -> register) are separate
processes started by ``dvc repro`` or Prefect, yet a pipeline execution must read as one
thing in the MLflow UI. The processes agree on a *pipeline id*; the first stage creates the
parent run tagged with it, later stages find it by tag and nest under it.

Pipeline id (``current_pipeline_id``):
  * ``$VITDET_PIPELINE_ID`` when set (``make run`` and the Prefect flow set it once per run);
  * otherwise ``adhoc-<12 hex>``: sha1 of git HEAD + the params (canonical JSON of the parsed
    params, so ``params.yaml`` content) + the UTC date-hour. Stages started by hand within the
    same hour on the same commit and params share a parent; the id is then exported to
    ``os.environ`` so child processes of this one inherit it.

Every stage run gets: all params flattened to the dotted names of ``params.yaml``; tags
``pipeline_id``, ``run_role=stage``, ``stage``, ``git.*``, ``pkg.*``, ``data.*`` (DVC hash of
``params["data"]["out"]``, taken when the stage ends so ``prepare`` records what it wrote),
``exit_status`` (success | failed | killed) and ``error``; metrics ``stage.wall_time_s`` (the
body of the ``with`` block), ``stage.tracking_setup_s`` (finding/creating runs, logging params),
``stage.peak_rss_mb`` (this process, ``getrusage(RUSAGE_SELF).ru_maxrss``) and
``stage.peak_rss_children_mb`` (largest finished child, e.g. DataLoader workers; it includes
pages shared with this process at fork, so the two are not summed). ``ru_maxrss`` is a
per-process peak: a stage sharing its process with earlier work reports that work's peak too.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import resource
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import unquote, urlparse

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from components.common.env import PROJECT_ROOT
from components.common.params import flatten
from components.tracking.lineage import data_lineage, git_info, lineage_tags

__all__ = [
    "PIPELINE_ENV",
    "DEFAULT_EXPERIMENT",
    "stage_run",
    "current_pipeline_id",
    "parent_run_id",
    "find_failed_run",
    "ensure_experiment",
    "flat_params",
    "RUN_TAGS_ENV",
    "env_run_tags",
]

log = logging.getLogger(__name__)

PIPELINE_ENV = "VITDET_PIPELINE_ID"
RUN_TAGS_ENV = "VITDET_RUN_TAGS"  # JSON object of extra tags for every stage run (experiments)
DEFAULT_EXPERIMENT = "vitdet-pipeline"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:+-]{1,200}$")
_BATCH = MAX_PARAMS_TAGS_PER_BATCH  # 100: MLflow's limit for params and tags per log_batch


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the stage's run is closed as KILLED."""


# --------------------------------------------------------------------------- ids
def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def current_pipeline_id(params: Mapping[str, Any] | None = None) -> str:
    """The id shared by every stage of this pipeline execution (see module docstring).

    ``params``: the full params dict the stage runs with; None reads ``params.yaml``.
    """
    if pid := os.environ.get(PIPELINE_ENV, "").strip():
        if not _ID_PATTERN.match(pid):
            raise ValueError(
                f"${PIPELINE_ENV}={pid!r}: use 1-200 characters from letters, digits and ._:+-"
            )
        return pid
    if params is None:
        from components.common.params import load_params

        params = load_params()
    head = git_info().get("commit") or "nogit"
    hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")
    digest = hashlib.sha1(f"{head}\n{_canonical(params)}\n{hour}".encode()).hexdigest()[:12]
    pid = f"adhoc-{digest}"
    os.environ[PIPELINE_ENV] = pid  # children of this process join the same pipeline
    return pid


# --------------------------------------------------------------------------- experiment
def _artifact_location(name: str) -> str | None:
    """Next to a local sqlite store: ``<db dir>/<experiment name>``; else the server default.

    Why: MLflow's default artifact root for sqlite is ``./mlruns`` relative to the *current
    directory* of whichever process first creates the experiment.
    """
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(unquote(urlparse(uri).path))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "experiment"
    return (db.parent / safe).resolve().as_uri()


# MLflow 3's UI opens an experiment in its GenAI view (traces, token usage) unless it is marked
# as model training: this tag puts the runs table, metric charts and compare view first.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")


def ensure_experiment(name: str = DEFAULT_EXPERIMENT, client: MlflowClient | None = None) -> str:
    """Experiment id for ``name``, created (artifacts next to the sqlite db) or restored, and
    marked as a model-training experiment (:data:`EXPERIMENT_KIND_TAG`)."""
    client = client or MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = client.create_experiment(name, artifact_location=_artifact_location(name),
                                              tags=dict([EXPERIMENT_KIND_TAG]))
            return exp_id
        except MlflowException as exc:  # another process created it first
            if (exp := client.get_experiment_by_name(name)) is None:
                raise exc
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    key, value = EXPERIMENT_KIND_TAG
    if exp.tags.get(key) != value:
        client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


# --------------------------------------------------------------------------- params
def flat_params(params: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Dotted params as MLflow strings; values over MLflow's 6000-char limit are truncated
    with a note. Returns (params, names that were truncated or dropped)."""
    out: dict[str, str] = {}
    changed: list[str] = []
    for key, value in flatten(params).items():
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            changed.append(key[:80] + "...")
            continue
        text = str(value)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            note = f"...[truncated {len(text)} chars]"
            text = text[: MAX_PARAM_VAL_LENGTH - len(note)] + note
            changed.append(key)
        out[key] = text
    return out, changed


def _log_batched(client: MlflowClient, run_id: str, *, params: Mapping[str, str] = {},
                 tags: Mapping[str, str] = {}, metrics: Mapping[str, float] = {}) -> None:
    ts = int(time.time() * 1000)
    p = [Param(k, v) for k, v in params.items()]
    t = [RunTag(k, str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in tags.items()]
    m = [Metric(k, float(v), ts, 0) for k, v in metrics.items()]
    for i in range(0, max(len(p), len(t), 1), _BATCH):
        client.log_batch(run_id, metrics=m if i == 0 else [], params=p[i:i + _BATCH],
                         tags=t[i:i + _BATCH])


# --------------------------------------------------------------------------- parent
def _quote(value: str) -> str:
    if not _ID_PATTERN.match(value):
        raise ValueError(f"invalid id for a run filter: {value!r}")
    return f"'{value}'"


def _parents(client: MlflowClient, exp_id: str, pipeline_id: str) -> list:
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.pipeline_id = {_quote(pipeline_id)} AND tags.run_role = 'pipeline'",
        max_results=50,
    )
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


def _get_or_create_parent(client: MlflowClient, exp_id: str, pipeline_id: str,
                          params: Mapping[str, str]) -> str:
    if found := _parents(client, exp_id, pipeline_id):
        return found[0].info.run_id
    run = client.create_run(exp_id, run_name=f"pipeline-{pipeline_id}",
                            tags={"pipeline_id": pipeline_id, "run_role": "pipeline"})
    mine = run.info.run_id
    # Two stages may start at once (parallel tasks): keep the oldest parent, drop ours.
    winner = _parents(client, exp_id, pipeline_id)[0].info.run_id
    if winner != mine:
        client.delete_run(mine)
        return winner
    _log_batched(client, mine, params=params, tags=lineage_tags())
    return mine


def parent_run_id(pipeline_id: str | None = None, *, experiment: str = DEFAULT_EXPERIMENT) -> str | None:
    """Run id of the pipeline's parent run (None if no stage of it has started yet)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = _parents(client, exp.experiment_id, pipeline_id or current_pipeline_id())
    return found[0].info.run_id if found else None


def find_failed_run(stage: str, pipeline_id: str | None = None, *,
                    experiment: str = DEFAULT_EXPERIMENT, include_running: bool = True) -> str | None:
    """Newest stage run named ``stage`` that did not finish: FAILED, KILLED, or (by default)
    still RUNNING (a process killed by the OOM killer or SIGKILL never closes its run).

    ``pipeline_id=None`` searches every pipeline (a resumed fine-tune usually belongs to a new
    pipeline execution). Tag the resumed stage with it: ``stage_run(..., tags={"resumed_from":
    run_id})``; ``stage_run`` then marks a still-RUNNING ``resumed_from`` run KILLED.
    """
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    statuses = {"FAILED", "KILLED"} | ({"RUNNING"} if include_running else set())
    filt = f"tags.run_role = 'stage' AND tags.stage = {_quote(stage)}"
    if pipeline_id:
        filt += f" AND tags.pipeline_id = {_quote(pipeline_id)}"
    active = mlflow.active_run()
    # (MLflow's filter has no IN for status: filter the newest runs here)
    for run in client.search_runs([exp.experiment_id], filter_string=filt,
                                  order_by=["attributes.start_time DESC"], max_results=50):
        if run.info.status in statuses and (active is None or run.info.run_id != active.info.run_id):
            return run.info.run_id
    return None


# --------------------------------------------------------------------------- stage run
def env_run_tags() -> dict[str, str]:
    """Tags from ``$VITDET_RUN_TAGS`` (a JSON object of str -> str; empty/unset: none).

    Why: a driver running stages in child processes (``components.experiments``) labels their
    runs (``experiment``, ``variant``, ``seed``) without changing each stage's signature."""
    raw = os.environ.get(RUN_TAGS_ENV, "").strip()
    if not raw:
        return {}
    try:
        tags = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"${RUN_TAGS_ENV} is not valid JSON ({exc}): {raw[:200]!r}") from None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in tags.items()):
        raise ValueError(f"${RUN_TAGS_ENV} must be a JSON object of string -> string, got "
                         f"{raw[:200]!r}")
    return tags


def _peak_rss_mb() -> dict[str, float]:
    """Peak RSS of this process and of its largest child (KiB on Linux). The children figure
    counts pages shared with this process at fork (a forked DataLoader worker or even a
    short ``git`` call reports about this process's size), so it is not added in."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"stage.peak_rss_mb": own, "stage.peak_rss_children_mb": kids}


def _classify(exc: BaseException | None) -> tuple[str, str]:
    """(MLflow status, exit_status tag) for how the stage body ended."""
    if exc is None:
        return "FINISHED", "success"
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "FINISHED", "success"
    if isinstance(exc, (KeyboardInterrupt, _Terminated)):
        return "KILLED", "killed"
    return "FAILED", "failed"


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """In the main thread, turn SIGTERM into ``_Terminated`` for the duration (only when
    nobody else installed a handler, e.g. an orchestrator running stages in-process)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _close_run(client: MlflowClient, run_id: str, status: str) -> None:
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
    else:
        # Ended by someone else: mmengine's MLflowVisBackend.close() calls mlflow.end_run()
        # (FINISHED) even when the stage fails afterwards; the stage's outcome wins.
        client.set_terminated(run_id, status)


@contextmanager
def stage_run(stage: str, params: Mapping[str, Any], *, experiment: str = DEFAULT_EXPERIMENT,
              tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """Run a pipeline stage inside a nested MLflow run under its pipeline's parent run.

    Args:
        stage: stage name (``prepare``, ``finetune``...): the nested run's name and ``stage`` tag.
        params: the FULL params dict the stage runs with (``load_params(...)``); logged flat.
        experiment: MLflow experiment (created with artifacts next to the sqlite store).
        tags: extra tags, e.g. ``{"resumed_from": find_failed_run("finetune")}``; they win
            over the tags of ``$VITDET_RUN_TAGS`` (:func:`env_run_tags`), also applied.

    Yields the active run: ``mlflow.log_metric(...)`` inside the block logs to it. The parent
    is RUNNING while the block runs and FINISHED / FAILED / KILLED after it, as the stage.
    Exceptions are re-raised; SIGTERM (main thread, default handler) closes the runs as
    KILLED and then terminates the process as SIGTERM would have.
    """
    if not _ID_PATTERN.match(stage):
        raise ValueError(f"stage name {stage!r}: use letters, digits and ._:+-")
    if (active := mlflow.active_run()) is not None:
        raise RuntimeError(
            f"stage_run({stage!r}): MLflow run {active.info.run_id} is already active in this "
            "thread; end it (mlflow.end_run()) before starting a stage"
        )
    start = time.perf_counter()
    extra_tags = {**env_run_tags(), **{k: str(v) for k, v in (tags or {}).items()}}
    client = MlflowClient()
    exp_id = ensure_experiment(experiment, client)
    pipeline_id = current_pipeline_id(params)
    flat, truncated = flat_params(params)
    parent = _get_or_create_parent(client, exp_id, pipeline_id, flat)
    client.update_run(parent, status="RUNNING")

    run_tags = {**lineage_tags(), "pipeline_id": pipeline_id, "run_role": "stage", "stage": stage,
                **extra_tags}
    if truncated:
        run_tags["params.truncated"] = ", ".join(truncated)
    run = mlflow.start_run(experiment_id=exp_id, run_name=stage, parent_run_id=parent,
                           tags={"pipeline_id": pipeline_id, "run_role": "stage", "stage": stage})
    run_id = run.info.run_id
    error: BaseException | None = None
    setup_s = 0.0
    body_start = time.perf_counter()
    try:
        _log_batched(client, run_id, params=flat, tags=run_tags)
        _kill_stale(client, run_tags.get("resumed_from"))
        setup_s = time.perf_counter() - start
        log.info("stage %s: MLflow run %s (pipeline %s, parent %s), setup %.2fs",
                 stage, run_id, pipeline_id, parent, setup_s)
        body_start = time.perf_counter()
        with _sigterm_as_exception():
            yield run
    except BaseException as exc:
        error = exc
        raise
    finally:
        status, exit_status = _classify(error)
        end_tags = {"exit_status": exit_status}
        if status != "FINISHED":
            end_tags["error"] = f"{type(error).__name__}: {error}"[:2000]
        try:
            data_out = (params.get("data") or {}).get("out") if isinstance(params, Mapping) else None
            if data_out:
                end_tags.update(data_lineage(PROJECT_ROOT / data_out))
            metrics = {"stage.wall_time_s": time.perf_counter() - body_start,
                       "stage.tracking_setup_s": setup_s, **_peak_rss_mb()}
            _log_batched(client, run_id, tags=end_tags, metrics=metrics)
        except Exception as exc:  # never mask the stage's own outcome
            log.warning("stage %s: could not log end-of-stage lineage/metrics: %s", stage, exc)
        try:
            _close_run(client, run_id, status)
            client.set_terminated(parent, status)
        except Exception as exc:
            log.warning("stage %s: could not close MLflow runs: %s", stage, exc)
        if isinstance(error, _Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # default handler is back: die as SIGTERM


def _kill_stale(client: MlflowClient, run_id: str | None) -> None:
    """A ``resumed_from`` run still RUNNING died without closing: mark it KILLED."""
    if not run_id:
        return
    try:
        if client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run_id, "KILLED")
    except MlflowException as exc:
        log.warning("resumed_from=%s: %s", run_id, exc)
