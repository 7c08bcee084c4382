"""One job (variant x seed) in this process: fine-tune, measure, evaluate, write ``result.json``.

The runner starts this in a fresh process per job (``python -m components.experiments variant
<folder>/request.json``) so that peak memory is the job's own and MLflow's active-run state
never leaks between jobs. The stages are the pipeline's own
(:func:`components.train.finetune.finetune`, :func:`components.evaluate.stage.evaluate`); their
MLflow runs nest under the invocation's parent run (``$VITDET_PIPELINE_ID``, set by the runner)
and carry the tags ``experiment``, ``variant``, ``seed`` (through ``$VITDET_RUN_TAGS``).

``<folder>/result.json`` (written atomically, also on failure) holds: experiment, variant, seed,
labels, overrides, status (``ok`` | ``failed``) + error, metrics (test COCO AP...), summary (the
flat numbers the report aggregates, also logged as ``exp/<key>`` on the fine-tuning run), memory,
timings, finetune_run_id, evaluate_run_id, data_hash, content_hash, config_hash, resume_key,
val_curve, inputs (experiment-specific, e.g. the pretrained backbone's meta), wall_s.
"""
from __future__ import annotations

import json
import math
import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from components.common.atomic import write_json_atomic
from components.experiments.plan import resume_key
from components.experiments.registry import Variant, get_experiment

__all__ = ["RESULT", "REQUEST", "write_request", "read_result", "run_request",
           "failed_result", "SUMMARY_METRICS"]

RESULT = "result.json"
REQUEST = "request.json"
SUMMARY_METRICS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "segm_mAP", "segm_mAP_50",
                   "segm_mAP_75")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_request(folder: Path, *, experiment: str, variant: Variant, seed: int, params: dict,
                  validation_marker: str | Path | None, inference_images: int,
                  pipeline_id: str | None) -> Path:
    """Everything the variant process needs, as JSON (also a record of the exact params)."""
    path = Path(folder) / REQUEST
    write_json_atomic(path, {
        "experiment": experiment, "variant": variant.name, "labels": variant.labels,
        "overrides": variant.overrides, "seed": int(seed), "params": params,
        "validation_marker": str(validation_marker) if validation_marker else None,
        "inference_images": int(inference_images), "pipeline_id": pipeline_id})
    return path


def read_result(folder: Path) -> dict | None:
    path = Path(folder) / RESULT
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def failed_result(req: Mapping[str, Any], error: str, **extra: Any) -> dict:
    """A ``failed`` result: no numbers, only the message (the report shows it as failed)."""
    return {"experiment": req["experiment"], "variant": req["variant"], "seed": int(req["seed"]),
            "labels": req.get("labels") or {}, "overrides": req.get("overrides") or {},
            "status": "failed", "error": error, "metrics": {}, "summary": {},
            "pipeline_id": req.get("pipeline_id"), "finished_at": _now(), **extra}


def _set_run_tags(req: Mapping[str, Any]) -> None:
    """Tags for both stage runs of this job (read by ``stage_run``) and the pipeline id."""
    from components.tracking.runs import PIPELINE_ENV, RUN_TAGS_ENV, env_run_tags

    tags = env_run_tags()
    tags.update(experiment=req["experiment"], variant=req["variant"], seed=str(req["seed"]))
    os.environ[RUN_TAGS_ENV] = json.dumps(tags)
    if req.get("pipeline_id"):
        os.environ[PIPELINE_ENV] = req["pipeline_id"]


def _test_images(params: Mapping[str, Any], n: int) -> list[Path]:
    from components.data import layout
    from components.train.config import resolve_path

    root = resolve_path(params["data"]["out"])
    gt = json.loads(layout.coco_json(root, params["evaluate"]["split"]).read_text())
    images = sorted(gt["images"], key=lambda i: i["id"])[:max(1, n)]
    return [layout.images_dir(root) / i["file_name"] for i in images]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _log_summary(run_id: str, summary: Mapping[str, float], result_path: Path) -> None:
    """``exp/<key>`` metrics and result.json on the fine-tuning run: one run per variant x seed
    carries everything the MLflow compare view needs."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"exp/{k}", float(v), ts, 0)
                                      for k, v in summary.items() if _finite(v)])
    client.log_artifact(run_id, str(result_path), artifact_path="experiment")


def _millions(module: Any) -> float | None:
    """Parameter count of ``module`` in millions (None without one)."""
    return None if module is None else sum(p.numel() for p in module.parameters()) / 1e6


def _run(req: dict, folder: Path) -> dict:
    import torch

    from components.evaluate.stage import evaluate
    from components.experiments.measure import (PeakMemory, read_train_log, time_inference,
                                                train_iter_time, val_curve)
    from components.train import resume
    from components.train.finetune import finetune

    spec = get_experiment(req["experiment"])
    params = req["params"]
    variant = Variant(req["variant"], dict(req.get("overrides") or {}), dict(req.get("labels") or {}))
    if spec.check is not None:
        spec.check(variant, params)
    inputs = spec.describe(variant, params) if spec.describe is not None else {}
    prepared = spec.prepare(variant, params, folder) if spec.prepare is not None else {}
    inputs.update(prepared.get("inputs") or {})
    extra = {k: float(v) for k, v in (prepared.get("summary") or {}).items() if _finite(v)}
    if prepared.get("detection", True) is False:
        from components.experiments.plan import expected_config_hash

        return {"metrics": dict(extra), "summary": dict(extra), "inputs": inputs,
                "timings": dict(prepared.get("timings") or {}),
                # no fine-tuning run: the exp/* metrics go on the prepare step's run
                "finetune_run_id": prepared.get("run_id"),
                # a job its experiment ran without fine-tuning (e.g. a seed the detection subset
                # skips) is keyed as such, so it is never mistaken for a fine-tuned one
                "resume_key": resume_key(expected_config_hash(params, folder), params,
                                         int(req["inference_images"]),
                                         {**variant.labels, "detection": False}
                                         if variant.labels.get("detection") else variant.labels)}

    t0 = time.perf_counter()
    with PeakMemory("cuda" if torch.cuda.is_available() else "cpu") as mem:
        ft = finetune(params, work_dir=folder, validation_marker=req.get("validation_marker"))
    finetune_s = time.perf_counter() - t0
    rows = read_train_log(ft.final / "train_log.jsonl")
    iters = train_iter_time(rows)
    t1 = time.perf_counter()
    infer = time_inference(ft.model, _test_images(params, int(req["inference_images"])))
    infer_s = time.perf_counter() - t1
    sizes = {"params_m": _millions(ft.model),
             "backbone_params_m": _millions(getattr(ft.model, "backbone", None))}
    del ft.model
    t2 = time.perf_counter()
    metrics = evaluate(params, work_dir=folder, out=folder / "evaluate")
    evaluate_s = time.perf_counter() - t2
    resume.clear_checkpoints(folder)  # final/ holds the weights; resume files are not needed

    numeric = {k: float(v) for k, v in metrics.items() if _finite(v)}
    curve = val_curve(rows)
    summary = {k: numeric[k] for k in SUMMARY_METRICS if k in numeric}
    summary.update(extra)
    summary.update(peak_train_mem_mib=mem.peak_mib, train_iter_s=iters["train_iter_s"],
                   infer_s_per_img=infer["infer_s_per_img"], finetune_s=finetune_s,
                   evaluate_s=evaluate_s, **{k: v for k, v in sizes.items() if v is not None})
    if curve:
        summary["val_bbox_mAP"] = curve[-1].get("bbox_mAP", float("nan"))
    return {
        "metrics": numeric, "summary": summary, "memory": mem.as_dict(),
        "timings": {**(prepared.get("timings") or {}), **iters, **infer,
                    "finetune_s": finetune_s, "inference_total_s": infer_s,
                    "evaluate_s": evaluate_s},
        "finetune_run_id": ft.meta.get("finetune_run_id"),
        "evaluate_run_id": metrics.get("evaluate_run_id"),
        "data_hash": metrics.get("data_hash"), "content_hash": metrics.get("content_hash"),
        "config_hash": ft.meta.get("config_hash"),
        "resume_key": resume_key(ft.meta["config_hash"], params, int(req["inference_images"]),
                                 variant.labels),
        "iterations": ft.meta.get("iterations"), "epochs": ft.meta.get("epochs"),
        "val_curve": curve, "inputs": inputs,
        "device": mem.device,
    }


def run_request(request: str | Path) -> int:
    """Run the job described by ``request.json``; write ``result.json`` next to it.
    Returns 0 when the job succeeded, 1 when it failed (the failure is in result.json)."""
    request = Path(request)
    req = json.loads(request.read_text())
    folder = request.parent
    start, started_at = time.perf_counter(), _now()
    (folder / RESULT).unlink(missing_ok=True)
    base = {"experiment": req["experiment"], "variant": req["variant"], "seed": int(req["seed"]),
            "labels": req.get("labels") or {}, "overrides": req.get("overrides") or {},
            "pipeline_id": req.get("pipeline_id"), "started_at": started_at}
    try:
        _set_run_tags(req)
        body = _run(req, folder)
    except Exception as exc:  # noqa: BLE001 (recorded as a failed variant; the others go on)
        tb = traceback.format_exc()
        print(tb, flush=True)
        result = failed_result(req, f"{type(exc).__name__}: {exc}", traceback=tb[-4000:],
                               started_at=started_at,
                               wall_s=round(time.perf_counter() - start, 3))
        write_json_atomic(folder / RESULT, result)
        return 1
    result = {**base, "status": "ok", "error": None, **body, "finished_at": _now(),
              "wall_s": round(time.perf_counter() - start, 3)}
    result["summary"]["wall_s"] = result["wall_s"]
    write_json_atomic(folder / RESULT, result)
    if result.get("finetune_run_id"):
        try:
            _log_summary(result["finetune_run_id"], result["summary"], folder / RESULT)
        except Exception as exc:  # noqa: BLE001 (the numbers are on disk; tracking is secondary)
            print(f"[experiments] warning: could not log exp/* metrics to MLflow: {exc}",
                  flush=True)
    return 0
