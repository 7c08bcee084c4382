"""The ``pipeline`` flow: dvc.yaml's stages as Prefect tasks, one MLflow parent run per flow run.

Stages: prepare (+ ``dvc push`` of the dataset) -> validate -> [curate] -> [proposals_*] ->
[pretrain_<method>...] ->
finetune -> evaluate -> register (+ ``dvc push`` of every output the run produced). dvc.yaml is the one definition
of each stage: every task runs ``dvc repro --single-item <stage>``, the same command as
``dvc repro``/``make run``, so DVC skips unchanged stages (a no-change rerun does no work) and
records lineage in dvc.lock. :data:`STAGES` is the order the flow expects; the run fails at once
(and ``tests/flows/test_flow_stage_plan.py`` fails) when dvc.yaml's stages drift from it.

Five steps are optional (:data:`OPTIONAL_STAGES`). ``curate`` (image-text pairs) and
``proposals`` (BING) run only when a planned stage depends on them; ``imagetext`` (UniCL's
transfer evaluation) when ``params["imagetext"]["stages"]`` lists ``evaluate``. Pretraining: dvc.yaml's ``pretrain_<method>``
stages run between validate and finetune only when asked for: the methods listed in
``params["pretrain"]["methods"]``, the stage that writes ``model.checkpoint`` (the backbone
fine-tuning loads), and whatever those depend on (BEiT's tokenizer). Experiments: the
``experiment_<name>`` stages (paper tables, ``components.experiments``) run after register when
``params["experiments"]["run"]`` names them, e.g. ``overrides={"experiments.run": ["fpn"]}``.
The defaults (``model.checkpoint: ""``, no lists) run neither (``dvc repro`` runs every stage).

Parameters and isolation (why a git worktree):
  * ``params_path`` + ``overrides`` (dotted keys, e.g. ``{"finetune.epochs": 12}``). Without
    overrides and with the project's own ``params.yaml``, the flow runs in the project: the
    same as ``dvc repro``, updating dvc.lock in the working copy.
  * Otherwise the run executes in a detached ``git worktree`` under ``runs/flows/<id>/``
    (HEAD + the working copy's uncommitted changes, params written there with the overrides
    applied, comments kept). It shares the project's DVC cache and remotes and the MLflow
    store (absolute paths), and on success is saved as the DVC experiment ``pipeline-<id8>``
    (``dvc exp show`` / ``dvc exp apply``) before the worktree is removed. The user's working
    copy is never modified. Failed runs keep the worktree for inspection (the log says where).
    Chosen over ``dvc exp run --temp -S``, which runs the whole pipeline as one opaque command
    (no per-stage tasks, retries or artifacts). Isolation needs one git commit.
  * MLflow: the flow run id is ``VITDET_PIPELINE_ID`` for every stage process, so all stage
    runs nest under one parent run; each logs the full (overridden) params. The flow tags the
    parent with ``prefect.flow_run_id``, ``dvc.data_hash``, ``dvc.experiment`` and ``overrides``.

Failures: transient ones (I/O, network, tracking server, DVC lock, exit 75) are retried with
backoff; deterministic ones are not. A validation failure ends the run Failed at once with the
report as the ``validation-report`` artifact; nothing is trained or registered.

Artifacts: ``validation-report`` (markdown), ``evaluation-metrics`` (table),
``promotion-decision`` (markdown: decision, MLflow links, model version, data hash),
``pipeline-stages`` (table: each stage ran/skipped and its seconds).

Run it: ``python -m flows.pipeline --set finetune.epochs=1`` (in-process), or through a
deployment: ``prefect deployment run 'pipeline/local' -p overrides='{"finetune.epochs": 1}'``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from components.common.env import PROJECT_ROOT, apply_defaults
from components.common.params import load_params, parse_override
from components.common.stages import (OptionalStep, dvc_graph, lock_out_hash, open_workspace,
                                      remove_workspace, save_experiment, stage_plan)
from flows import tasks

__all__ = ["STAGES", "OPTIONAL_STAGES", "pipeline", "main"]

# The flow's stage list, checked against dvc.yaml on every run and by tests/flows.
STAGES = ("prepare", "validate", "curate", "proposals", "pretrain", "finetune", "evaluate",
          "register", "imagetext", "experiment")
# optional step -> which of its stages run (none by default): the members a params list names,
# plus the pretraining stage that writes the backbone fine-tuning loads; random init needs none
OPTIONAL_STAGES = {
    "pretrain": OptionalStep("pretrain.methods", needed_for=("model.checkpoint",),
                             without_stage=("random",)),
    "experiment": OptionalStep("experiments.run"),
    # data products only some stages read: they run when a planned stage depends on them
    "curate": OptionalStep(None),      # image-text pairs for UniCL (pretrain_unicl)
    "proposals": OptionalStep(None),   # BING model + proposal cache for object-aware crops
    "imagetext": OptionalStep("imagetext.stages"),  # UniCL transfer: [evaluate]
}


@flow(name="pipeline", description="prepare -> validate -> finetune -> evaluate -> register, "
      "each `dvc repro --single-item <stage>`; overrides run in an isolated git worktree")
def pipeline(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None,
             isolate: bool | None = None, push: bool = True,
             keep_workspace: bool = False) -> dict[str, Any]:
    """Run the whole pipeline once.

    Args:
        params_path: params file, relative to the project root or absolute.
        overrides: dotted keys of params.yaml -> values, e.g. ``{"finetune.epochs": 1}``.
        isolate: None = isolate exactly when params differ from the project's params.yaml;
            True = always run in a worktree (saved as a DVC experiment).
        push: ``dvc push`` the dataset after prepare and everything at the end.
        keep_workspace: keep an isolated run's worktree after success.

    Returns a JSON-safe summary (ids, plan, per-stage seconds, data hash, links, decision).
    """
    apply_defaults()
    log = get_run_logger()
    t0 = time.perf_counter()
    pipeline_id = flow_run.get_id() or uuid.uuid4().hex
    overrides = dict(overrides or {})
    ws = open_workspace(PROJECT_ROOT, pipeline_id, params_path, overrides, isolate,
                        on_line=log.info)
    root = str(ws.root)
    info: dict[str, Any] = {"pipeline_id": pipeline_id, "flow_run_id": flow_run.get_id(),
                            "workspace": root, "isolated": ws.isolated, "overrides": overrides,
                            "params_path": params_path, "data_hash": None, "experiment": None}
    try:
        params = load_params(ws.root / "params.yaml")
        plan = stage_plan(dvc_graph(ws.root), STAGES, OPTIONAL_STAGES, params)
        log.info("pipeline %s: %s in %s", pipeline_id, " -> ".join(plan), root)
        runs = []
        for stage in plan:
            step = {"validate": tasks.validate, "register": tasks.register}.get(
                stage.split("@")[0], tasks.run_stage)
            runs.append(step(stage, root, pipeline_id))
            if stage == "prepare":
                info["data_hash"] = lock_out_hash(ws.root, "prepare", params["data"]["out"])
                log.info("dataset %s: DVC hash %s", params["data"]["out"], info["data_hash"])
                if push:
                    runs.append(tasks.push(root, pipeline_id, ["prepare"], label="dataset"))
        if push:
            runs.append(tasks.push(root, pipeline_id, plan, label="all"))
        if ws.isolated:
            info["experiment"] = save_experiment(ws, f"pipeline-{pipeline_id[:8]}", plan,
                                                 on_line=log.info)
        metrics_file = f"{params['evaluate'].get('out', 'results/evaluate')}/evaluation.json"
        decision_file = f"{params['register'].get('out', 'results/register')}/decision.json"
        links = tasks.publish_results(root, pipeline_id, info, runs, metrics_file, decision_file)
    except BaseException:
        remove_workspace(ws, keep=True, on_line=log.error)
        raise
    decision = _read(ws.root / decision_file)
    remove_workspace(ws, keep=keep_workspace, on_line=log.info)
    info.update(plan=plan, links=links, seconds=round(time.perf_counter() - t0, 2),
                stages=[{"stage": r.stage, "ran": r.ran, "seconds": round(r.seconds, 2)}
                        for r in runs],
                decision={k: decision.get(k) for k in ("promoted", "model_name", "version",
                                                       "champion", "reason")})
    return info


def _read(path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--set", "-S", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params value, e.g. -S finetune.epochs=1 (repeatable)")
    parser.add_argument("--isolate", action="store_true", help="always run in a git worktree")
    parser.add_argument("--no-push", action="store_true", help="skip dvc push")
    parser.add_argument("--keep-workspace", action="store_true")
    args = parser.parse_args(argv)
    apply_defaults()
    overrides = dict(parse_override(s) for s in args.set)
    try:  # unknown keys fail here, before Prefect starts
        load_params(PROJECT_ROOT / args.params, overrides)
    except KeyError as exc:
        raise SystemExit(f"--set: {exc.args[0]}") from None
    summary = pipeline(params_path=args.params, overrides=overrides,
                       isolate=True if args.isolate else None, push=not args.no_push,
                       keep_workspace=args.keep_workspace)
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
