"""``python -m components.tracking {register,rollback,show}``: the pipeline's last stage and
the registry's manual controls.

``register`` reads ``<evaluate.out>/evaluation.json`` (written by ``components.evaluate``; a
``metrics.json`` beside it, or passed with ``--metrics``, adds to / overrides it):
  * ``<register.metric_key>`` (default ``bbox_mAP``) and every other numeric value: the metrics;
  * ``model_config`` / ``model_weights``: the mmengine config and ``.safetensors`` state dict,
    relative to the project root or absolute;
  * ``data_hash``: DVC hash of the evaluation data (falls back to hashing ``data.out``);
  * ``run_id`` or ``eval_run_id`` (optional): the evaluation's MLflow run. Without it, the
    newest ``evaluate`` stage run whose logged ``test/<metric_key>`` equals the file's value.
It logs the pyfunc model in a nested ``register`` run, applies the promotion gate, writes
``<register.out>/decision.json`` and prints the decision. Exit 0 whether or not the model was
promoted; 1 when something is missing or broken.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Mapping

from components.common.env import PROJECT_ROOT, apply_defaults
from components.common.params import add_params_arguments

__all__ = ["main", "register_stage", "read_eval_metrics"]


def _abs(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def read_eval_metrics(path: Path) -> dict[str, Any]:
    """``path`` (a metrics.json), on top of the ``evaluation.json`` record beside it if any."""
    record = path.parent / "evaluation.json"
    base = {}
    if record.is_file() and record != path:
        base = read_eval_metrics(record)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: run the evaluate stage first "
                         "(`python -m components.evaluate --params params.yaml`)") from None
    except ValueError as exc:
        raise SystemExit(f"{path} is not valid JSON ({exc}): rerun the evaluate stage") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object of metrics")
    return {**base, **data}


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _evaluation_run(metrics: Mapping[str, Any], metric_key: str, experiment: str) -> str:
    """The MLflow run that produced ``metrics`` (see the module docstring)."""
    from mlflow.tracking import MlflowClient

    for key in ("run_id", "eval_run_id"):
        if isinstance(metrics.get(key), str) and metrics[key]:
            return metrics[key]
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    value = metrics.get(metric_key)
    if exp is not None and isinstance(value, (int, float)):
        runs = client.search_runs([exp.experiment_id],
                                  "tags.run_role = 'stage' AND tags.stage = 'evaluate'",
                                  order_by=["attributes.start_time DESC"], max_results=50)
        for run in runs:
            logged = run.data.metrics.get(f"test/{metric_key}", run.data.metrics.get(metric_key))
            same_model = (metrics.get("finetune_run_id") in (None, "None")
                          or run.data.tags.get("finetune_run_id") == str(metrics["finetune_run_id"]))
            if logged is not None and same_model and (
                    logged == float(value) or (math.isnan(logged) and math.isnan(float(value)))):
                return run.info.run_id
    raise SystemExit("cannot tell which MLflow run produced the metrics: add \"run_id\" (the "
                     "evaluate stage's run id) to metrics.json, or rerun the evaluate stage")


def register_stage(params: Mapping[str, Any], *, metrics_path: Path | None = None,
                   out: Path | None = None, experiment: str | None = None) -> dict[str, Any]:
    """The register stage (see the module docstring); returns the decision as a dict."""
    import mlflow

    from components.common.atomic import write_json_atomic
    from components.tracking.lineage import dataset_hash
    from components.tracking.pyfunc_model import log_detector_model
    from components.tracking.promotion import promote
    from components.tracking.runs import DEFAULT_EXPERIMENT, stage_run

    reg = params["register"]
    experiment = experiment or DEFAULT_EXPERIMENT
    metric_key = reg.get("metric_key", "bbox_mAP")
    metrics_path = metrics_path or _abs(params["evaluate"]["out"]) / "metrics.json"
    out = out or _abs(reg.get("out", "results/register"))
    metrics = read_eval_metrics(metrics_path)
    for key in ("model_config", "model_weights"):
        if not metrics.get(key):
            raise SystemExit(f"{metrics_path}: no {key!r}: the evaluate stage must record the "
                             "model it evaluated")
    if metric_key not in metrics:
        raise SystemExit(f"{metrics_path}: no {metric_key!r} (register.metric_key); has "
                         f"{sorted(_numeric(metrics))}")
    data_hash = metrics.get("data_hash") or dataset_hash(_abs(params["data"]["out"]))
    eval_run = _evaluation_run(metrics, metric_key, experiment)
    (out / "decision.json").unlink(missing_ok=True)  # never leave a stale decision looking current

    with stage_run("register", params, experiment=experiment, tags={"eval_run_id": eval_run}):
        info = log_detector_model(_abs(metrics["model_config"]), _abs(metrics["model_weights"]),
                                  name="model", input_example=_example_image(params))
        mlflow.log_metrics(_numeric(metrics))
        decision = promote(registered_model_name(params), eval_run, info.model_uri, metrics, data_hash,
                           min_ap=float(reg["min_ap"]), margin=float(reg["margin"]),
                           metric_key=metric_key)
        result = decision.to_dict()
        mlflow.set_tags({"registry.model_name": decision.model_name,
                         "registry.version": str(decision.version),
                         "registry.promoted": str(decision.promoted),
                         "registry.reason": decision.reason[:5000]})
        mlflow.log_dict(result, "decision.json")
        write_json_atomic(out / "decision.json", result)
    return result


def registered_model_name(params: Mapping[str, Any]) -> str:
    """``register.model_name``, or ("") the detector's own name (``vitdet-maskrcnn``,
    ``vitdet-ssdlite``): each detector architecture has its own registered model and champion."""
    from components.train.detectors import detector_of

    return str(params["register"].get("model_name") or detector_of(params).registered_name)


def _example_image(params: Mapping[str, Any]) -> bytes | None:
    """The first image of the evaluated split: the registered model's input example."""
    from components.data import layout

    root = _abs(params["data"]["out"])
    try:
        coco = json.loads(layout.coco_json(root, params["evaluate"]["split"]).read_text())
        first = min(coco["images"], key=lambda im: im["id"])
        return (layout.images_dir(root) / first["file_name"]).read_bytes()
    except (OSError, ValueError, KeyError):
        return None  # registered without an example; the signature still describes the input


def _summary(d: Mapping[str, Any]) -> str:
    if d["action"] == "rollback":
        return f"{d['model_name']}: {d['reason']}"
    verdict = "PROMOTED to champion" if d["promoted"] else "not promoted"
    return f"{d['model_name']} v{d['version']} {verdict}: {d['reason']}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m components.tracking",
        description="Model registry stage and controls (MLflow aliases 'champion'/'challenger').")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("register", help="log + register the evaluated model and apply the gate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_params_arguments(r, example="register.margin=0.01")
    r.add_argument("--metrics", type=Path, help="metrics file (default: <evaluate.out>/metrics.json)")
    r.add_argument("--out", type=Path, help="decision folder (default: register.out)")
    r.add_argument("--experiment", help="MLflow experiment (default: vitdet-pipeline)")

    for name, text in (("rollback", "move 'champion' back to the version it replaced"),
                       ("show", "print aliases, champion history and decision tags")):
        c = sub.add_parser(name, help=text, description=text)
        c.add_argument("--model", help="registered model name (default: register.model_name, "
                                       "or the model.detector's own name)")
        c.add_argument("--params", default="params.yaml", help="params file for the default name")
        if name == "show":
            c.add_argument("--json", action="store_true", help="print JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    args = _parser().parse_args(argv)
    from components.common.params import load_params_or_exit

    model = getattr(args, "model", None)
    params: dict = {}
    if args.command == "register" or not model:  # rollback/show only need the default name
        params = load_params_or_exit(args.params, getattr(args, "overrides", []))
        model = model or registered_model_name(params)

    from mlflow.exceptions import MlflowException

    try:
        if args.command == "register":
            result = register_stage(params, metrics_path=args.metrics, out=args.out,
                                    experiment=args.experiment)
            print(_summary(result))
            print(json.dumps(result, indent=2, sort_keys=True))
            return 0
        if not model:
            print("no model name: pass --model NAME or set register.model_name", file=sys.stderr)
            return 2
        if args.command == "rollback":
            from components.tracking.promotion import rollback

            result = rollback(model).to_dict()
            print(_summary(result), file=sys.stdout if result["promoted"] else sys.stderr)
            return 0 if result["promoted"] else 1
        from components.tracking.promotion import describe

        info = describe(model)
        if args.json:
            print(json.dumps(info, indent=2, sort_keys=True))
        else:
            print(_show_text(info))
        return 0
    except MlflowException as exc:
        print(f"MLflow error: {exc.message}", file=sys.stderr)
        return 1


def _show_text(info: Mapping[str, Any]) -> str:
    lines = [f"model {info['model_name']}"]
    for alias, version in sorted(info["aliases"].items()):
        tags = info["versions"].get(version, {})
        lines.append(f"  @{alias}: v{version}  {tags.get('metric_key', '?')}="
                     f"{tags.get('candidate_metric', '?')}  data={tags.get('data_hash', '?')}  "
                     f"decided {tags.get('decided_at', '?')}: {tags.get('reason', '')}")
    if not info["aliases"]:
        lines.append("  (no aliases)")
    lines.append("history (oldest first):")
    for ev in info["history"]:
        before = f"from v{ev['from']}" if ev.get("from") else "first champion"
        lines.append(f"  {ev.get('at', '')} {ev.get('event')} -> v{ev.get('version')} ({before})")
    if not info["history"]:
        lines.append("  (none)")
    return "\n".join(lines)
