"""``params.yaml`` -> resolved mmengine ``Config`` for fine-tuning a detector on any backbone.

The structure (model, LSJ pipeline, evaluator, hooks) lives in the Python config files under
``configs/`` (``mask_rcnn.py`` and ``ssdlite.py``, both composed on ``mask_rcnn_base.py``); the
detector (``model.detector``, :mod:`components.train.detectors`) fills in its model; this module
fills in every
user-facing number by name from params. Transforms and hooks are looked up by their ``type``,
never by list position. The backbone comes only through the backbone contract
(:mod:`components.models.backbones`): no field of a particular backbone is read here.

params -> config:
  model.detector                  mask_rcnn (bbox + segm) | ssdlite (bbox): config file, necks
                                    and heads, metrics (components/train/detectors.py)
  data.out                        data_root of every dataset; COCO classes -> num_classes
  model.backbone / size /
    checkpoint (+ the family's
    own keys, e.g. the ViT's
    patch_size, attention,
    adapter, rel_pos ...)         model.backbone = family.config(model); the necks before the
                                    FPN and the pyramid's channels/strides = family.pyramid()
                                    -> FPN in_channels, anchor strides, RoI feature strides (one
                                    level = no FPN, the paper's Table 2 ablation)
  model.heads                     head upgrades: 'paper' | 'classic' | {fpn_norm, rpn_2conv,
                                    box_4conv1fc, mask_norm: bool} (HEAD_UPGRADES)
  model.fpn_channels              FPN / RPN / RoI head width
  model.roi_samples               RoIs sampled per image for the box head
  model.geometry_scale            anchor sizes and RoI-level thresholds x this; 'auto' =
                                    finetune.img_size / 1024 (the paper's geometry, scaled)
  model.cfg_options               expert escape hatch: dotted mmengine keys merged last
  finetune.img_size, lsj_scale    LSJ RandomResize / RandomCrop / Pad, test Resize
  finetune.batch_size/num_workers dataloaders
  finetune.lr/weight_decay/betas  AdamW;  finetune.layer_decay -> layer-wise lr decay;
                                    finetune.grad_clip -> max global grad norm (0 = off)
  finetune.epochs/warmup_epochs   train loop + lr schedule (components.train.schedule)
  finetune.val_interval,
    checkpoint_interval,
    nan_patience                  loop / CheckpointHook / NonFiniteLossGuardHook
  finetune.val_before_train       ValBeforeTrainHook (val AP of the initial model, epoch 0)
  seed                            randomness
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config, ConfigDict

from components.common.env import PROJECT_ROOT
from components.data import layout
from components.models.backbones import BackboneFamily, get_backbone
from components.train.detectors import (HEAD_UPGRADES, HEAD_VARIANTS, ModelContext, detector_of,
                                        head_upgrades)
from components.train.schedule import Schedule, lr_schedulers, make_schedule

__all__ = ["CONFIG_DIR", "MASK_RCNN_CONFIG", "detector_of", "HEAD_VARIANTS", "HEAD_UPGRADES", "head_upgrades",
           "build_config", "resolve_path", "backbone_family",
           "coco_classes", "count_train_images", "dataset_cfg", "schedule_of", "find_transform"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
MASK_RCNN_CONFIG = CONFIG_DIR / "mask_rcnn.py"


def resolve_path(path: str | Path) -> Path:
    """params paths are relative to the project root (as DVC and the tracking stage read them)."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _read_coco(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: COCO annotations not found. Build the dataset with "
            "`python -m components.data prepare --params params.yaml` (data.out)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def coco_classes(ann_file: str | Path) -> tuple[str, ...]:
    """Category names ordered by category id (mmdet's label order for CocoDataset)."""
    cats = sorted(_read_coco(Path(ann_file))["categories"], key=lambda c: c["id"])
    if not cats:
        raise ValueError(f"{ann_file}: no categories")
    return tuple(c["name"] for c in cats)


def count_train_images(ann_file: str | Path, min_size: int = 0) -> int:
    """Images CocoDataset keeps with ``filter_empty_gt=True``: any annotation of a listed
    category (crowd included, as mmdet does) and ``min(w, h) >= min_size``."""
    coco = _read_coco(Path(ann_file))
    cat_ids = {c["id"] for c in coco["categories"]}
    with_ann = {a["image_id"] for a in coco["annotations"] if a["category_id"] in cat_ids}
    return sum(1 for im in coco["images"]
               if im["id"] in with_ann and min(im.get("width", 0), im.get("height", 0)) >= min_size)


def find_transform(pipeline: list, type_name: str) -> dict:
    for t in pipeline:
        if t["type"] == type_name:
            return t
    raise KeyError(f"pipeline has no {type_name!r} transform (configs/mask_rcnn_base.py)")


def dataset_cfg(cfg: Config, data_root: Path, split: str, classes: tuple[str, ...],
                *, train: bool = False) -> ConfigDict:
    """A CocoDataset dict for ``split`` of ``data_root`` with the config's pipeline."""
    src = cfg.train_dataloader.dataset if train else cfg.val_dataloader.dataset
    ds = copy.deepcopy(src)
    ds.data_root = str(data_root)
    ds.ann_file = str(layout.coco_json(data_root, split).relative_to(data_root))
    ds.data_prefix = dict(img=f"{layout.IMAGES}/")
    ds.metainfo = dict(classes=classes)
    return ds


def backbone_family(model: Mapping[str, Any]) -> BackboneFamily:
    """The registered family ``model.backbone`` names (default ``vit``)."""
    return get_backbone(str(model.get("backbone", "vit")))


PAPER_IMG_SIZE = 1024  # the paper's LSJ side: mmdet's anchors (32-512 px) and RoI levels fit it


def _geometry_scale(params: Mapping[str, Any]) -> float:
    """Factor for anchor sizes and RoI-level thresholds (``model.geometry_scale``).

    mmdet's geometry ties sizes to feature cells, not to the image: an anchor is 8 x its stride
    (32-512 px on strides 4-64) and a RoI of side < 112 px (2 x ``finest_scale`` 56) is pooled
    from stride 4, so every object is matched and pooled where it spans ~8 cells. That holds at
    any input size, so 1.0 is the default. A factor < 1 suits objects smaller than 32 px.
    ``'auto'`` (``img_size / 1024``, "the paper's 1024 px geometry shrunk to the input") is kept
    as an option but measured worse: at 128 px it makes anchors 1 x stride, so a 31 px object
    meets one 32 px anchor per 32 px cell and the RPN gets 2 positive anchors per image instead
    of 11 (``benchmarks/detection_diagnostics.py``), and RoIs read a 4x4 map at 2-3 cells a box.
    """
    value = params["model"].get("geometry_scale", 1.0)
    if value == "auto":
        return float(params["finetune"]["img_size"]) / PAPER_IMG_SIZE
    value = float(value)
    if value <= 0:
        raise ValueError(f"model.geometry_scale must be 'auto' or > 0, got {value}")
    return value


def schedule_of(params: Mapping[str, Any]) -> Schedule:
    """Iteration counts of a run from params and the train split's COCO JSON."""
    ft = params["finetune"]
    ann = layout.coco_json(resolve_path(params["data"]["out"]), "train")
    return make_schedule(count_train_images(ann), int(ft["batch_size"]), int(ft["epochs"]),
                         float(ft["warmup_epochs"]))


# --------------------------------------------------------------------------- main entry
def build_config(params: Mapping[str, Any], *, work_dir: Path | str | None = None) -> Config:
    """Resolved mmengine Config for ``params`` (see the module docstring for the mapping)."""
    m, ft = params["model"], params["finetune"]
    data_root = resolve_path(params["data"]["out"]).resolve()
    detector = detector_of(params)
    cfg = Config.fromfile(str(detector.config_path))
    for placeholder in ("IMG", "PAD", "_dataset", "norm_cfg", "_ssd_norm"):
        cfg.pop(placeholder, None)

    classes = coco_classes(layout.coco_json(data_root, "train"))
    sched = schedule_of(params)

    # ---- model: the backbone through its contract, then the detector's necks and heads
    model = cfg.model
    family = backbone_family(m)
    model_params = dict(m, checkpoint=str(resolve_path(m["checkpoint"])) if m.get("checkpoint")
                        else "")
    model.backbone = ConfigDict(family.config(model_params))
    ctx = ModelContext(family=family, model_params=model_params, classes=classes,
                       img_size=int(ft["img_size"]), geometry_scale=_geometry_scale(params))
    detector.configure(model, ctx)

    # ---- data (LSJ numbers)
    img, lo_hi = int(ft["img_size"]), tuple(float(x) for x in ft["lsj_scale"])
    train_pipe = cfg.train_dataloader.dataset.pipeline
    find_transform(train_pipe, "RandomResize").update(scale=(img, img), ratio_range=lo_hi)
    find_transform(train_pipe, "RandomCrop").update(crop_size=(img, img))
    find_transform(train_pipe, "Pad").update(size=(img, img))
    find_transform(train_pipe, "LoadAnnotations").update(with_mask=detector.with_masks)
    test_pipe = cfg.val_dataloader.dataset.pipeline
    find_transform(test_pipe, "Resize").update(scale=(img, img))
    cfg.train_pipeline, cfg.test_pipeline = train_pipe, test_pipe

    bs, workers = int(ft["batch_size"]), int(ft["num_workers"])
    for name, split in (("train_dataloader", "train"), ("val_dataloader", "val")):
        loader = cfg[name]
        loader.batch_size = bs
        loader.num_workers = workers
        loader.persistent_workers = workers > 0
        loader.dataset = dataset_cfg(cfg, data_root, split, classes, train=split == "train")
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.val_evaluator.ann_file = str(layout.coco_json(data_root, "val"))
    cfg.val_evaluator.metric = list(detector.metrics)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    cfg.metainfo = dict(classes=classes)

    # ---- optimisation: AdamW, wd off for norms/biases/pos_embed, optional layer decay
    opt = cfg.optim_wrapper
    opt.optimizer.update(lr=float(ft["lr"]), weight_decay=float(ft["weight_decay"]),
                         betas=tuple(float(b) for b in ft["betas"]))
    opt.paramwise_cfg.layer_decay_rate = float(ft["layer_decay"])
    clip = float(ft.get("grad_clip", 0.0) or 0.0)
    if clip > 0:  # max global grad norm: keeps the first steps of a from-scratch run stable
        opt.clip_grad = dict(max_norm=clip, norm_type=2)
    # epochs -> iterations: see components/train/schedule.py for the arithmetic
    cfg.param_scheduler = lr_schedulers(sched)
    cfg.train_cfg.update(max_epochs=int(ft["epochs"]), val_interval=int(ft["val_interval"]))

    # ---- hooks / runtime
    log_every = max(1, min(20, math.ceil(sched.iters_per_epoch / 4)))
    cfg.default_hooks.logger.interval = log_every
    cfg.log_processor.window_size = log_every
    cfg.default_hooks.checkpoint.interval = int(ft["checkpoint_interval"])
    cfg.custom_hooks = [
        dict(type="NonFiniteLossGuardHook", patience=int(ft["nan_patience"])),
        dict(type="MLflowMetricsHook", interval=log_every),
    ]
    if ft.get("val_before_train", True):  # epoch 0 of the val curve = AP before fine-tuning
        cfg.custom_hooks.append(dict(type="ValBeforeTrainHook"))
    cfg.randomness = dict(seed=int(params["seed"]), deterministic=False)
    cfg.work_dir = str(resolve_path(work_dir or ft["work_dir"]))
    cfg.schedule = dict(vars(sched))  # recorded for meta.json / tests; ignored by mmengine

    # ---- expert overrides last (e.g. tiny test models); the necks' input channels follow the
    # (possibly overridden) backbone through its contract
    if m.get("cfg_options"):
        cfg.merge_from_dict(dict(m["cfg_options"]))
        detector.attach_backbone_overrides(cfg.model, ctx)
    return cfg
