"""The evaluation stage: ``<work_dir>/final/`` on the held-out split -> metrics.json + plots.

1. rebuild the test Runner from ``final/config.py`` with the ``evaluate.split`` dataset of
   ``data.out``, load ``final/model.safetensors`` (safetensors' loader: tensors only), run
   mmengine's test loop with mmdet's ``CocoMetric`` in ``format_only`` mode: it dumps the
   detections (boxes + RLE masks, COCO results format);
2. score them with :mod:`components.evaluate.metrics` (faster-coco-eval backend), bbox + segm;
3. write, atomically, ``<evaluate.out>/evaluation.json`` (the record: every COCO metric, the
   data hashes, the model files, the run ids; what the register stage reads),
   ``metrics.json`` (the AP columns ``dvc metrics show`` prints,
   :mod:`components.common.dvc_metrics`) and ``plots/``; log ``test/<key>`` metrics and the
   files to MLflow inside ``stage_run("evaluate", params)``.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from components.common.atomic import atomic_dir
from components.common.dvc_metrics import ap_row
from components.common.env import project_relative
from components.data import layout
from components.evaluate import metrics as M
from components.evaluate import plots
from components.train.config import dataset_cfg, resolve_path

__all__ = ["METRIC_KEYS", "evaluate", "predict", "final_dir"]

METRIC_KEYS = tuple(f"{iou}_{k}" for iou in M.IOU_TYPES for k in M.STAT_KEYS)


def final_dir(params: Mapping[str, Any], work_dir: str | Path | None = None) -> Path:
    return resolve_path(work_dir or params["finetune"]["work_dir"]) / "final"


def iou_types(cfg) -> tuple[str, ...]:
    """The COCO iou types the model of ``cfg`` is scored on (its evaluator's metrics, in
    :data:`M.IOU_TYPES` order): bbox + segm for Mask R-CNN, bbox for SSDLite."""
    wanted = cfg.val_evaluator.get("metric", list(M.IOU_TYPES))
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    return tuple(iou for iou in M.IOU_TYPES if iou in wanted)


def predict(final: Path, data_root: Path, split: str, out_prefix: Path,
            batch_size: int = 2) -> tuple[dict[str, list[dict]], int]:
    """Detections of the model in ``final/`` on ``split``: ``({"bbox": [...][, "segm": [...]]},
    number of images)`` in COCO results format, one entry per :func:`iou_types`."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from safetensors.torch import load_file

    import components.train  # noqa: F401  (registers types named in the config)

    cfg = Config.fromfile(str(final / "config.py"))
    classes = tuple(cfg.metainfo["classes"])
    ann = layout.coco_json(data_root, split)
    if not ann.is_file():
        raise FileNotFoundError(f"{ann}: no annotations for evaluate.split={split!r}")
    loader = cfg.test_dataloader
    loader.dataset = dataset_cfg(cfg, data_root, split, classes)
    loader.batch_size, loader.num_workers, loader.persistent_workers = batch_size, 0, False
    ious = iou_types(cfg)
    cfg.test_evaluator = dict(type="CocoMetric", ann_file=str(ann), metric=list(ious),
                              format_only=True, outfile_prefix=str(out_prefix))
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler",
                "val_dataloader", "val_cfg", "val_evaluator"):
        cfg[key] = None
    cfg.custom_hooks = []
    cfg.default_hooks.pop("checkpoint", None)
    cfg.default_hooks.logger.interval = 10
    cfg.work_dir = str(out_prefix.parent / "runner")
    cfg.load_from, cfg.resume = None, False
    cfg.visualizer.vis_backends = [dict(type="LocalVisBackend")]
    runner = Runner.from_cfg(cfg)
    state = load_file(str(final / "model.safetensors"))
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    model.load_state_dict(state, strict=True)
    runner.test()
    dets = {iou: M.load_detections(f"{out_prefix}.{iou}.json") for iou in ious}
    return dets, len(runner.test_dataloader.dataset)


def _visual_samples(data_root: Path, gt: dict, dets: list[dict], n: int):
    """(name, RGB image, its detections, its ground truth) for the first ``n`` images."""
    import cv2

    by_image: dict[int, list[dict]] = {}
    for d in dets:
        by_image.setdefault(d["image_id"], []).append(d)
    truth: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        truth.setdefault(a["image_id"], []).append(a)
    samples = []
    for img in sorted(gt["images"], key=lambda i: i["id"])[:n]:
        bgr = cv2.imread(str(layout.images_dir(data_root) / img["file_name"]), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        samples.append((Path(img["file_name"]).name, bgr[:, :, ::-1].copy(),
                        by_image.get(img["id"], []), truth.get(img["id"], [])))
    return samples


def evaluate(params: Mapping[str, Any], *, work_dir: str | Path | None = None,
             out: str | Path | None = None, backend: str = "faster",
             compare: bool = False) -> dict[str, Any]:
    """Run the stage; return the metrics dict written to ``metrics.json``."""
    import mlflow

    from components.data.manifest import read_manifest
    from components.tracking.runs import stage_run

    ev = params["evaluate"]
    out = resolve_path(out or ev["out"])
    # a failed run must not leave the previous run's metrics looking current
    for name in ("metrics.json", "evaluation.json"):
        (out / name).unlink(missing_ok=True)
    final = final_dir(params, work_dir)
    for name in ("model.safetensors", "config.py", "meta.json"):
        if not (final / name).is_file():
            raise FileNotFoundError(f"{final / name} not found: train first "
                                    "(`python -m components.train --params params.yaml`)")
    meta = json.loads((final / "meta.json").read_text())
    data_root = resolve_path(params["data"]["out"])
    split = ev["split"]
    content = read_manifest(data_root)["content_hash"]
    try:
        from components.tracking.lineage import dataset_hash

        data_hash = dataset_hash(data_root)
    except Exception:  # noqa: BLE001 (lineage is best effort; the content hash is exact)
        data_hash = content

    with stage_run("evaluate", params) as run:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="vitdet-eval-") as tmp:
            dets, num_images = predict(final, data_root, split, Path(tmp) / "preds",
                                       batch_size=int(params["finetune"]["batch_size"]))
        ann = layout.coco_json(data_root, split)
        gt = json.loads(ann.read_text())
        ious = tuple(dets)
        results = {iou: M.coco_evaluate(gt, dets[iou], iou, backend) for iou in ious}
        eval_seconds = time.perf_counter() - t0
        comparison = M.compare_backends(ann, dets) if compare else None

        metrics: dict[str, Any] = {f"{iou}_{k}": results[iou].stats[k]
                                   for iou in ious for k in M.STAT_KEYS}
        metrics.update(
            split=split, num_images=num_images, data_hash=data_hash, content_hash=content,
            model_config=project_relative(final / "config.py"),
            model_weights=project_relative(final / "model.safetensors"),
            finetune_run_id=meta.get("finetune_run_id"), evaluate_run_id=run.info.run_id,
            eval_seconds=round(eval_seconds, 3))

        log_rows = []
        log_path = final / "train_log.jsonl"
        if log_path.is_file():
            log_rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
        classes = {c["id"]: c["name"] for c in gt["categories"]}
        with atomic_dir(out) as tmp_out:
            pdir = tmp_out / "plots"
            pdir.mkdir()
            rows, cols = plots.train_loss_rows(log_rows)
            plots.write_csv(pdir / "train_loss.csv", rows, cols)
            plots.plot_train_loss(rows, cols, pdir / "train_loss.png")
            rows, cols = plots.val_ap_rows(log_rows)
            plots.write_csv(pdir / "val_ap.csv", rows, cols)
            plots.plot_val_ap(rows, pdir / "val_ap.png")
            per_class = {iou: results[iou].per_class for iou in ious}
            pc_rows = [{"class": c, **{f"{iou}_AP": per_class[iou][c] for iou in ious}}
                       for c in per_class["bbox"]]
            plots.write_csv(pdir / "per_class_ap.csv", pc_rows,
                            ["class", *(f"{iou}_AP" for iou in ious)])
            plots.plot_per_class_ap(per_class, pdir / "per_class_ap.png")
            samples = _visual_samples(data_root, gt, dets.get("segm") or dets["bbox"],
                                      int(ev["num_visualizations"]))
            plots.plot_predictions(samples, classes, float(ev["score_threshold"]),
                                   pdir / "predictions.png")
            if comparison is not None:
                (tmp_out / "backend_comparison.json").write_text(json.dumps(comparison, indent=2))
            (tmp_out / "evaluation.json").write_text(json.dumps(metrics, indent=2,
                                                                sort_keys=True) + "\n")
            (tmp_out / "metrics.json").write_text(json.dumps(ap_row(metrics), indent=2) + "\n")

        mlflow.log_metrics({f"test/{k}": metrics[k] for k in METRIC_KEYS if k in metrics})
        mlflow.log_metrics({"test/eval_seconds": eval_seconds, "test/num_images": num_images,
                            "test/coco_eval_seconds": sum(r.seconds for r in results.values())})
        mlflow.set_tags({"finetune_run_id": str(meta.get("finetune_run_id")),
                         "evaluate.split": split})
        mlflow.log_artifacts(str(out), artifact_path="evaluate")
    segm = f", segm AP {metrics['segm_mAP']:.4f}" if "segm_mAP" in metrics else ""
    print(f"[evaluate] {split}: bbox AP {metrics['bbox_mAP']:.4f}{segm} "
          f"on {num_images} images ({eval_seconds:.1f}s) -> "
          f"{out / 'metrics.json'}", flush=True)
    if comparison is not None:
        print(json.dumps({k: {"seconds": v["seconds"], "max_abs_diff": v["max_abs_diff"]}
                          for k, v in comparison.items()}), flush=True)
    return metrics
