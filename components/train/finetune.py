"""The fine-tuning stage: validated data -> mmengine Runner -> ``<work_dir>/final/``.

Steps:
1. gate: ``results/validation/validated.json`` must exist and name the dataset's current
   ``manifest.json`` ``content_hash`` (else :class:`DatasetNotValidated`);
2. resolve the config (:func:`components.train.config.build_config`) and its hash (config +
   data content hash);
3. resume when ``<work_dir>/run_state.json`` says the previous run with the same hash did not
   finish (killed, crashed): ``runner.resume`` through the ``vitdet-trusted://`` loader of
   :mod:`components.train.resume` (which documents the ``weights_only`` decision); otherwise
   remove stale checkpoints and start fresh;
4. train inside ``stage_run("finetune", params)`` (the resumed run is tagged
   ``resumed_from=<previous run id>``); our hooks log to that run;
5. on success write, atomically, ``<work_dir>/final/``: ``model.safetensors`` (the detector's
   full ``state_dict``, tensors only), ``config.py`` (resolved; ``build_detector`` reads it),
   ``meta.json`` and ``train_log.jsonl`` (mmengine's json log, all resumed segments merged).
   A failed run leaves no ``final/`` (an older one is removed when the run starts).
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from components.common.atomic import atomic_dir, write_json_atomic
from components.common.env import PROJECT_ROOT
from components.train.config import build_config, resolve_path

__all__ = ["VALIDATION_MARKER", "DatasetNotValidated", "FinetuneResult", "require_validated",
           "config_hash", "finetune", "merge_json_logs", "FINAL_FILES"]

VALIDATION_MARKER = PROJECT_ROOT / "results" / "validation" / "validated.json"
FINAL_FILES = ("model.safetensors", "config.py", "meta.json", "train_log.jsonl")


@dataclass
class FinetuneResult:
    final: Path            # <work_dir>/final
    meta: dict             # final/meta.json
    model: Any             # the trained detector (in memory, eval mode)


class DatasetNotValidated(RuntimeError):
    """The validation gate has not passed for the dataset's current content."""


def _hint() -> str:
    return "run `dvc repro validate` / python -m components.validation --params params.yaml"


def require_validated(data_root: Path, marker: Path | None = None) -> str:
    """The dataset's ``content_hash`` if the validation marker matches it, else raise."""
    from components.data.manifest import read_manifest

    marker = Path(marker or VALIDATION_MARKER)
    content = read_manifest(data_root)["content_hash"]
    if not marker.is_file():
        raise DatasetNotValidated(f"dataset not validated: {marker} does not exist; {_hint()}")
    try:
        recorded = json.loads(marker.read_text()).get("content_hash")
    except (json.JSONDecodeError, AttributeError):
        recorded = None
    if recorded != content:
        raise DatasetNotValidated(
            f"dataset not validated: {marker} content_hash {recorded!r} != {data_root}/"
            f"manifest.json content_hash {content!r} (the data changed since validation); "
            f"{_hint()}")
    return content


def config_hash(cfg, data_content_hash: str) -> str:
    """sha256 of the resolved config (minus work_dir / resume fields) and the data hash."""
    body = copy.deepcopy(cfg.to_dict())
    for key in ("work_dir", "load_from", "resume"):
        body.pop(key, None)
    blob = json.dumps({"config": body, "data": data_content_hash}, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


def merge_json_logs(paths: list[Path]) -> list[dict]:
    """mmengine json-log lines of several (resumed) segments, later segments winning per step.

    Train lines (``loss``...) are keyed by iteration, val lines (``coco/...``, or none when the
    model detected nothing) by epoch.
    """
    rows: dict[tuple[str, int], dict] = {}
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            # a val line has no loss (and no coco/ keys at all when nothing was detected)
            kind = "train" if "loss" in row else "val"
            rows[(kind, int(row.get("step", 0)))] = row
    return [rows[k] for k in sorted(rows, key=lambda k: (k[1], k[0]))] if rows else []


def _json_log_paths(work_dir: Path, log_dirs: list[str]) -> list[Path]:
    out = []
    for name in log_dirs:
        out.append(work_dir / name / "vis_data" / f"{name}.json")
    return out


def _state_dict_tensors(model) -> dict:
    """Detached, contiguous, storage-unshared CPU copies (safetensors refuses shared storage)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def _final_losses(rows: list[dict]) -> dict[str, float]:
    train = [r for r in rows if "loss" in r]
    if not train:
        return {}
    return {k: float(v) for k, v in train[-1].items() if k.startswith("loss")}


def finetune(params: Mapping[str, Any], *, work_dir: str | Path | None = None,
             validation_marker: str | Path | None = None) -> FinetuneResult:
    """Run the stage (see the module docstring). Raises on any failure (then no ``final/``)."""
    import mlflow
    from mmengine.runner import Runner
    from safetensors.torch import save_file

    from components.tracking.runs import find_failed_run, stage_run
    from components.train import resume

    started = time.perf_counter()
    cfg = build_config(params, work_dir=work_dir)
    data_root = resolve_path(params["data"]["out"])
    content = require_validated(data_root, Path(validation_marker) if validation_marker else None)
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    chash = config_hash(cfg, content)

    found = resume.find_resumable(work, chash)
    tags: dict[str, str] = {"config_hash": chash}
    if found is not None:
        ckpt, prev = found
        previous = prev.get("mlflow_run_id") or find_failed_run("finetune")
        if previous:
            tags["resumed_from"] = previous
        print(f"[finetune] resuming from {ckpt} (previous run {previous or 'unknown'})",
              flush=True)
    else:
        resume.clear_checkpoints(work)
    shutil.rmtree(work / "final", ignore_errors=True)

    with stage_run("finetune", params, tags=tags) as run:
        run_id = run.info.run_id
        state = resume.read_state(work) if found else {}
        state.update(config_hash=chash, status="running", mlflow_run_id=run_id,
                     data_content_hash=content)
        state.setdefault("log_dirs", [])
        resume.write_state(work, state)

        cfg.custom_hooks.append(dict(type="RunStateHook", config_hash=chash))
        if found is not None:
            cfg.resume, cfg.load_from = True, resume.trusted_uri(found[0])
        resolved = work / "resolved_config.py"
        cfg.dump(str(resolved))
        mlflow.log_artifact(str(resolved), artifact_path="config")
        mlflow.set_tags({"work_dir": str(work), "iters_per_epoch": cfg.schedule["iters_per_epoch"],
                         "total_iters": cfg.schedule["total_iters"]})

        runner = Runner.from_cfg(cfg)
        log_name = Path(runner.log_dir).name
        resume.update_state(work, log_dirs=state["log_dirs"] + [log_name])
        try:
            runner.train()
        except BaseException:
            resume.update_state(work, status="failed")
            raise
        finally:
            for hook in runner.hooks:
                if hasattr(hook, "close"):
                    hook.close()
            state = resume.read_state(work) or {}
            for path in _json_log_paths(work, state.get("log_dirs", [])):
                if path.is_file():
                    mlflow.log_artifact(str(path), artifact_path="logs")

        rows = merge_json_logs(_json_log_paths(work, state.get("log_dirs", [])))
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        final_cfg = copy.deepcopy(cfg)
        final_cfg.load_from, final_cfg.resume = None, False
        final_cfg.model.backbone.pretrained = None
        final_cfg.custom_hooks = [h for h in final_cfg.custom_hooks if h["type"] != "RunStateHook"]
        wrapper = runner.optim_wrapper
        meta = {
            "classes": list(cfg.metainfo["classes"]),
            "iterations": int(runner.iter),
            "epochs": int(runner.epoch),
            "schedule": dict(cfg.schedule),
            "final_losses": _final_losses(rows),
            "val": next((r for r in reversed(rows) if any(k.startswith("coco/") for k in r)),
                        None),
            "skipped_steps": int(getattr(wrapper, "skipped_steps", 0)),
            "finetune_run_id": run_id,
            "resumed_from": tags.get("resumed_from"),
            "config_hash": chash,
            "data_content_hash": content,
            "data_root": str(data_root),
            "backbone_checkpoint": cfg.model.backbone.pretrained,
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
        with atomic_dir(work / "final") as tmp:
            save_file(_state_dict_tensors(model), str(tmp / "model.safetensors"),
                      metadata={"format": "pt", "finetune_run_id": run_id})
            final_cfg.dump(str(tmp / "config.py"))
            (tmp / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            write_json_atomic(tmp / "meta.json", meta)
        mlflow.log_artifact(str(work / "final" / "meta.json"), artifact_path="final")
        mlflow.log_artifact(str(work / "final" / "config.py"), artifact_path="final")
        mlflow.log_metric("train/wall_time_s", meta["wall_time_s"])
        resume.update_state(work, status="finished")
    print(f"[finetune] wrote {work / 'final'} ({meta['iterations']} iterations, "
          f"{meta['wall_time_s']:.0f}s)", flush=True)
    model.eval()
    model.cfg, model.dataset_meta = final_cfg, {"classes": tuple(meta["classes"])}
    return FinetuneResult(work / "final", meta, model)
