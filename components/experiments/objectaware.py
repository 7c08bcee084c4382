"""``objectaware``: SSL method x crop policy, read by linear probe and detection transfer.

The object-aware cropping paper (Mishra et al.) pretrains MoCo-v2 / BYOL on multi-object
scenes with different crop policies and compares them by (Table 1/3) a multi-label linear
probe on OpenImages (mAP) and (Table 4) detection fine-tuning. Each variant here is one
``method:policy[@boxes][/family:size]`` entry of ``experiments.objectaware.variants``, e.g.
``mocov2:obj_obj_dilate@bing``, plus ``random`` (the same backbone untrained: the floor every
SSL row must clear). One job (variant x seed) runs, in its own process:

1. the pretraining stage's own code (``python -m components.pretrain --method <method>``
   with ``pretrain.<method>.crops.policy/boxes`` set) into the job folder;
2. a multi-label linear probe on the frozen backbone's pooled features: fit on the
   ``probe.train_split`` image-level labels, mAP on ``probe.test_split`` (the built-in scenes'
   labels by default; OpenImages image-level CSVs when imported);
3. for the variants ``detection`` selects (``true``: all; or a list of entries), the
   pipeline's fine-tune + evaluate from that backbone (``model.checkpoint``; Table 4's
   AP / AP50 / AP75), at the seeds ``detection_seeds`` lists (null: all). Fine-tuning costs
   minutes per job on CPU, the probe seconds, so the default probes every variant at every
   seed and fine-tunes a subset.

The job's backbone lives at ``<job>/pretrain-<hash>/`` where the hash covers the ``pretrain``
params and the seed, so a changed pretraining recipe re-runs the job and an unchanged one is
reused on resume.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from components.experiments.registry import (BarChart, Column, Variant, VariantError,
                                             register_experiment)

if TYPE_CHECKING:  # pragma: no cover
    from components.experiments.report import ReportContext

SOURCE = ('Mishra, Shah, Bansal, Anjaria, Jagannatha, Sharma, Jacobs, Krishnan: "Object-Aware '
          'Cropping for Self-Supervised Learning", arXiv 2112.00319')
METHODS = ("mocov2", "byol")
VARIANTS = ["random", "mocov2:scene_scene", "mocov2:obj_scene@bing", "mocov2:obj_obj_dilate@bing",
            "mocov2:obj_obj_shift@bing", "mocov2:obj_obj_dilate@gt",
            "byol:scene_scene", "byol:obj_obj_dilate@bing"]
PROBE_DEFAULTS = {"train_split": "train", "test_split": "test", "img_size": 0,  # 0: pretrain size
                  "weight_decay": 1.0e-3, "max_train": 0}


def parse_entry(entry: str) -> dict[str, str]:
    """``method:policy[@boxes][/family:size]`` -> its parts (ValueError naming the entry)."""
    from components.models.backbones import BACKBONES
    from components.pretrain.crops import BOX_SOURCES, POLICIES, needs_boxes

    text = str(entry)
    body, _, backbone = text.partition("/")
    if body == "random":  # the reference row: the same backbone, never trained
        family, _, size = backbone.partition(":")
        return {"method": "random", "policy": "", "boxes": "", "family": family, "size": size}
    head, _, boxes = body.partition("@")
    method, _, policy = head.partition(":")
    if method not in METHODS:
        raise ValueError(f"experiments.objectaware.variants: {text!r}: method {method!r} is not "
                         f"one of {list(METHODS)} (write method:policy[@boxes][/family:size])")
    if policy not in POLICIES:
        raise ValueError(f"experiments.objectaware.variants: {text!r}: unknown crop policy "
                         f"{policy!r}; known: {list(POLICIES)}")
    if needs_boxes(policy):
        boxes = boxes or "bing"
        if boxes not in BOX_SOURCES:
            raise ValueError(f"experiments.objectaware.variants: {text!r}: boxes {boxes!r} not "
                             f"in {list(BOX_SOURCES)}")
    elif boxes:
        raise ValueError(f"experiments.objectaware.variants: {text!r}: {policy} uses no boxes")
    family, _, size = backbone.partition(":")
    if family and family not in BACKBONES:
        raise ValueError(f"experiments.objectaware.variants: {text!r}: unknown backbone family "
                         f"{family!r}; known: {list(BACKBONES)}")
    if family:
        BACKBONES[family].variant(size)
    return {"method": method, "policy": policy, "boxes": boxes or "", "family": family,
            "size": size}


def _pretrain_hash(params: Mapping[str, Any], method: str) -> str:
    """What the job's pretraining depends on: the shared ``pretrain.*`` keys, the method's own
    section, the seed and the ViT grid (not other methods' sections, not the output folder)."""
    from components.pretrain.config import SHARED_DEFAULTS

    section = params.get("pretrain") or {}
    pre = {k: v for k, v in section.items() if k in SHARED_DEFAULTS and k != "out"}
    pre[method] = section.get(method)
    body = json.dumps({"pretrain": pre, "seed": params.get("seed"),
                       "model": {k: (params.get("model") or {}).get(k)
                                 for k in ("patch_size", "pretrain_img_size")}},
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:10]


def job_overrides(variant: Variant, params: Mapping[str, Any], folder: Any) -> dict:
    """The job's own pretraining output and ``model.checkpoint`` pointing at it."""
    out = Path(folder) / f"pretrain-{_pretrain_hash(params, variant.labels['method'])}"
    return {"pretrain.out": str(out),
            "model.checkpoint": str(out / variant.labels["method"] / "backbone.safetensors")}


def check(variant: Variant, params: Mapping[str, Any]) -> None:
    """A BING variant needs the proposal cache of its pretraining split."""
    from components.train.config import resolve_path

    if variant.labels["boxes"] != "bing":
        return
    method = variant.labels["method"]
    sec = (params.get("pretrain") or {}).get(method) or {}
    path = resolve_path(sec.get("proposals", "data/proposals")) / f"{sec.get('split', 'train')}.npz"
    if not path.is_file():
        raise VariantError(f"{variant.name}: BING proposals {path} not found; produce them with "
                           "`dvc repro proposals` (python -m components.proposals propose)")


def _probe_backbone(meta: Mapping[str, Any], ckpt: Path):
    """The pretrained backbone as its stage recorded it (family, size, grid) in meta.json."""
    from components.models.backbones import get_backbone
    from components.pretrain.common import build_backbone

    family = meta["backbone"]
    backbone = build_backbone(meta["size"], int(meta["img_size"]), int(meta["patch_size"]),
                              arch=meta.get("arch") or None, family=family)
    report = get_backbone(family).load_weights(backbone, ckpt)
    if report.missing:
        raise RuntimeError(f"{ckpt}: {len(report.missing)} backbone tensors missing "
                           f"(e.g. {report.missing[:3]})")
    return backbone


def linear_probe(params: Mapping[str, Any], ckpt: Path, meta: Mapping[str, Any],
                 probe: Mapping[str, Any]) -> dict:
    """Multi-label linear probe of the backbone in ``ckpt`` (described by its ``meta.json``):
    ``probe_mAP`` + per-class AP."""
    import torch

    from components.pretrain.config import resolve_path
    from components.pretrain.data import image_level_labels
    from components.probe import extract_features, fit_linear_probe, mean_average_precision

    root = resolve_path(params["data"]["out"])
    img_size = int(probe.get("img_size") or meta["img_size"])  # default: the pretraining size
    tr_paths, tr_y, classes = image_level_labels(root, probe["train_split"],
                                                 int(probe.get("max_train") or 0))
    te_paths, te_y_raw, te_classes = image_level_labels(root, probe["test_split"])
    te_y = torch.zeros(len(te_paths), len(classes))
    for j, name in enumerate(te_classes):
        if name in classes:
            te_y[:, classes.index(name)] = te_y_raw[:, j]
    backbone = _probe_backbone(meta, ckpt)
    t0 = time.perf_counter()
    x_tr = extract_features(backbone, tr_paths, img_size)
    x_te = extract_features(backbone, te_paths, img_size)
    clf = fit_linear_probe(x_tr, tr_y, multilabel=True, weight_decay=float(probe["weight_decay"]),
                           seed=int(params.get("seed", 0)))
    m_ap, per_class = mean_average_precision(clf.scores(x_te), te_y)
    return {"probe_mAP": m_ap, "probe_s": time.perf_counter() - t0,
            "per_class_ap": {c: ap for c, ap in zip(classes, per_class) if not math.isnan(ap)},
            "train_images": len(tr_paths), "test_images": len(te_paths), "classes": classes}


def _detects(variant: Variant, section: Mapping[str, Any], seed: int) -> bool:
    """Whether this job fine-tunes: its variant is listed in ``detection`` and its seed in
    ``detection_seeds`` (null: every seed)."""
    seeds = section.get("detection_seeds")
    return bool(variant.labels.get("detection", True)) and (seeds is None or seed in seeds)


def prepare(variant: Variant, params: Mapping[str, Any], folder: Any) -> dict:
    """Pretrain (unless this job's backbone already exists), then linear-probe it."""
    from components.experiments.plan import settings
    from components.pretrain.__main__ import pretrain_method
    from components.train.config import resolve_path

    method = variant.labels["method"]
    ckpt = resolve_path(params["model"]["checkpoint"])
    meta_path = ckpt.parent / "meta.json"
    t0 = time.perf_counter()
    run_id = None
    if ckpt.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
    else:
        meta = pretrain_method(dict(params), method, progress=True)
        run_id = meta.get("mlflow_run_id")
    pretrain_s = time.perf_counter() - t0
    section = {**DEFAULTS, **((settings(params).get("objectaware")) or {})}
    probe = linear_probe(params, ckpt, meta, {**PROBE_DEFAULTS, **dict(section.get("probe") or {})})
    summary = {"probe_mAP": probe["probe_mAP"], "pretrain_s": pretrain_s,
               "probe_s": probe["probe_s"],
               "pretrain_final_loss": meta.get("final_loss") or float("nan")}
    inputs = {"pretrain": {k: meta.get(k) for k in ("method", "backbone", "size", "img_size",
                                                    "images", "data_hash", "epochs", "steps",
                                                    "final_loss", "throughput_img_s")},
              "crops": (meta.get("options") or {}).get("crops"),
              "probe": {k: v for k, v in probe.items() if k not in ("probe_mAP", "probe_s")}}
    return {"summary": summary, "inputs": inputs, "run_id": run_id,
            "detection": _detects(variant, section, int(params.get("seed", 0))),
            "timings": {"pretrain_s": pretrain_s, "probe_s": probe["probe_s"]}}


def report(ctx: "ReportContext") -> str:
    """Table 1/3 (probe mAP) and Table 4 (detection AP) analogues: method x crop policy."""
    from components.experiments.report import fmt_stat, md_table

    cols = [c for c in ctx.spec.columns]
    by_method: dict[str, list] = {}
    for s in ctx.summaries:
        by_method.setdefault(s.variant.labels["method"], []).append(s)
    lines = ["### Linear probe (Table 1/3 analogue) and detection transfer (Table 4 analogue)", "",
             "Gain = probe mAP minus the same method's `scene_scene` baseline (seed means).", ""]
    for method, rows in by_method.items():
        base = next((s.stats["probe_mAP"].mean for s in rows
                     if s.variant.labels["policy"] == "scene_scene" and "probe_mAP" in s.stats),
                    None)
        table = []
        for s in rows:
            lab = s.variant.labels
            st = s.stats.get("probe_mAP")
            gain = (f"{st.mean - base:+.4f}" if st is not None and base is not None else "—")
            table.append([f"`{lab['policy']}`" if lab["policy"] else "— (untrained)",
                          lab["boxes"] or "—",
                          lab.get("family") or "default",
                          *(fmt_stat(s, c) if s.status == "ok" else s.status for c in cols),
                          gain, f"{len(s.ok_seeds)}/{len(s.seeds)}"])
        lines += [f"**{method}**", "",
                  md_table(["crop policy", "boxes", "backbone", *(c.label for c in cols),
                            "probe gain", "seeds ok"], table), ""]
    return "\n".join(lines)


DEFAULTS = {"variants": list(VARIANTS), "detection": True, "detection_seeds": None,
            "probe": dict(PROBE_DEFAULTS)}


@register_experiment(
    "objectaware", title="object-aware cropping: SSL method x crop policy", paper="Tables 1, 3, 4",
    description=__doc__.split("\n\n", 1)[1], source=SOURCE, defaults=DEFAULTS,
    columns=(Column("probe_mAP", "probe mAP"), Column("bbox_mAP", "APbox"),
             Column("bbox_mAP_50", "APbox50"), Column("bbox_mAP_75", "APbox75"),
             Column("segm_mAP", "APmask")),
    charts=(BarChart("probe.png", "multi-label linear probe mAP (test split)", ("probe_mAP",),
                     "mAP"),),
    check=check, report=report, job_overrides=job_overrides, prepare=prepare)
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """One variant per ``method:policy[@boxes][/family:size]`` entry."""
    detection = section.get("detection", True)
    if not isinstance(detection, (bool, list)):
        raise ValueError("experiments.objectaware.detection must be true, false or a list of "
                         f"variant entries, got {detection!r}")
    if isinstance(detection, list):
        unknown = sorted(set(map(str, detection)) - set(map(str, section["variants"])))
        if unknown:
            raise ValueError(f"experiments.objectaware.detection lists {unknown}, which are not "
                             "in experiments.objectaware.variants")
    out, seen = [], set()
    for entry in section["variants"]:
        parts = parse_entry(entry)
        parts["detection"] = detection if isinstance(detection, bool) else str(entry) in detection
        name = "-".join(p for p in (parts["method"], parts["policy"], parts["boxes"],
                                    parts["family"] + parts["size"]) if p)
        if name in seen:
            raise ValueError(f"experiments.objectaware.variants: {entry!r} is listed twice")
        seen.add(name)
        m = parts["method"]
        overrides: dict[str, Any] = ({f"pretrain.{m}.crops.policy": parts["policy"]}
                                     if parts["policy"] else {})
        if parts["boxes"]:
            overrides[f"pretrain.{m}.crops.boxes"] = parts["boxes"]
        if parts["family"]:
            overrides.update({"pretrain.backbone": parts["family"], "pretrain.size": parts["size"],
                              "model.backbone": parts["family"], "model.size": parts["size"]})
        out.append(Variant(name, overrides, parts))
    return out
