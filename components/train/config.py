"""``params.yaml`` -> resolved mmengine ``Config`` for Mask R-CNN fine-tuning on any backbone.

The structure (model, LSJ pipeline, evaluator, hooks) lives in the Python config files under
``configs/`` (``mask_rcnn.py`` composed on ``mask_rcnn_base.py``); this module fills in every
user-facing number by name from params. Transforms and hooks are looked up by their ``type``,
never by list position. The backbone comes only through the backbone contract
(:mod:`components.models.backbones`): no field of a particular backbone is read here.

params -> config:
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
from components.models.backbones import BackboneFamily, get_backbone, single_level_anchor_scales
from components.train.schedule import Schedule, lr_schedulers, make_schedule

__all__ = ["CONFIG_DIR", "MASK_RCNN_CONFIG", "HEAD_VARIANTS", "HEAD_UPGRADES", "head_upgrades",
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


# --------------------------------------------------------------------------- head variants
# The paper's "upgraded modules" (Li et al. 2021, Sec. 4), each switchable on its own:
HEAD_UPGRADES = ("fpn_norm", "rpn_2conv", "box_4conv1fc", "mask_norm")


def _apply_head_upgrades(model: ConfigDict, upgrades: Mapping[str, bool]) -> None:
    """The base config has every upgrade on; switch off the ones set to False (2017 form)."""
    if not upgrades.get("fpn_norm", True):       # BN after the FPN convs
        model.neck[-1].pop("norm_cfg", None)
    if not upgrades.get("rpn_2conv", True):      # 2 shared convs in the RPN head -> 1
        model.rpn_head.num_convs = 1
    if not upgrades.get("box_4conv1fc", True):   # 4 conv (BN) + 1 fc box head -> 2 fc
        bbox = model.roi_head.bbox_head
        bbox.type = "Shared2FCBBoxHead"
        for key in ("conv_out_channels", "norm_cfg"):
            bbox.pop(key, None)
    if not upgrades.get("mask_norm", True):      # BN in the mask head's convs
        model.roi_head.mask_head.pop("norm_cfg", None)


HEAD_VARIANTS: dict[str, dict[str, bool]] = {
    "paper": {k: True for k in HEAD_UPGRADES},     # Li et al. 2021 upgrades
    "classic": {k: False for k in HEAD_UPGRADES},  # 2017 Mask R-CNN heads
}


def head_upgrades(value: Any) -> dict[str, bool]:
    """``model.heads``: a preset name (HEAD_VARIANTS) or a mapping of HEAD_UPGRADES -> bool
    (missing switches stay on), e.g. ``{box_4conv1fc: false}``."""
    if isinstance(value, str):
        if value not in HEAD_VARIANTS:
            raise ValueError(f"model.heads must be one of {sorted(HEAD_VARIANTS)} or a mapping "
                             f"of {list(HEAD_UPGRADES)} to true/false, got {value!r}")
        return dict(HEAD_VARIANTS[value])
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(HEAD_UPGRADES))
        if unknown:
            raise ValueError(f"model.heads: unknown switches {unknown}; known: "
                             f"{list(HEAD_UPGRADES)}")
        return {k: bool(value.get(k, True)) for k in HEAD_UPGRADES}
    raise ValueError(f"model.heads must be a preset name or a mapping, got {value!r}")


def backbone_family(model: Mapping[str, Any]) -> BackboneFamily:
    """The registered family ``model.backbone`` names (default ``vit``)."""
    return get_backbone(str(model.get("backbone", "vit")))


def _attach_pyramid(model: ConfigDict, necks: list[dict],
                    shape: Mapping[str, tuple[int, int]]) -> None:
    """Necks before the FPN, and the FPN / anchors / RoI extractors sized for ``shape``.

    Several levels: FPN over them plus one max-pooled level (P6), one anchor size per level
    (8 x stride, then x ``geometry_scale``), RoIs pooled from the levels. One level (the paper's
    "no FPN" row): the FPN keeps one level (a 1x1 lateral + 3x3 output conv, so the heads'
    width and norms stay as in the FPN variants), the RPN gets five anchor scales on it,
    the same sizes as the five FPN levels' anchors, and both RoI extractors read it.
    """
    fpn = model.neck if isinstance(model.neck, Mapping) else model.neck[-1]
    channels = [int(c) for c, _ in shape.values()]
    strides = [int(s) for _, s in shape.values()]
    fpn.in_channels = channels
    anchors = model.rpn_head.anchor_generator
    if len(strides) == 1:
        fpn.num_outs = 1
        anchors.strides = strides
        anchors.scales = single_level_anchor_scales(strides[0])
    else:
        fpn.num_outs = len(strides) + 1
        anchors.strides = strides + [2 * strides[-1]]
    for name in ("bbox_roi_extractor", "mask_roi_extractor"):
        model.roi_head[name].featmap_strides = strides
    model.neck = [ConfigDict(n) for n in necks] + [fpn]


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


def _scale_geometry(model: ConfigDict, factor: float) -> None:
    """Anchor scales and both RoI extractors' ``finest_scale`` x ``factor``."""
    anchors = model.rpn_head.anchor_generator
    anchors.scales = [float(s) * factor for s in anchors.scales]
    for name in ("bbox_roi_extractor", "mask_roi_extractor"):
        model.roi_head[name].finest_scale *= factor




def _set_width(model: ConfigDict, width: int) -> None:
    """FPN output width, and everything that consumes it; the box head's fc is 4x as wide
    (1024 at the paper's 256)."""
    model.neck[-1].out_channels = width
    model.rpn_head.in_channels = width
    model.rpn_head.feat_channels = width
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = width
    roi.mask_roi_extractor.out_channels = width
    roi.bbox_head.in_channels = width
    roi.bbox_head.fc_out_channels = 4 * width
    if "conv_out_channels" in roi.bbox_head:
        roi.bbox_head.conv_out_channels = width
    roi.mask_head.in_channels = width
    roi.mask_head.conv_out_channels = width


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
    cfg = Config.fromfile(str(MASK_RCNN_CONFIG))
    for placeholder in ("IMG", "PAD", "_dataset", "norm_cfg"):
        cfg.pop(placeholder, None)

    classes = coco_classes(layout.coco_json(data_root, "train"))
    sched = schedule_of(params)

    # ---- model: the backbone and its pyramid through the contract, then the heads
    model = cfg.model
    family = backbone_family(m)
    model_params = dict(m, checkpoint=str(resolve_path(m["checkpoint"])) if m.get("checkpoint")
                        else "")
    model.backbone = ConfigDict(family.config(model_params))
    _attach_pyramid(model, *family.pyramid(model.backbone.to_dict(), model_params))
    _apply_head_upgrades(model, head_upgrades(m.get("heads", "paper")))
    _set_width(model, int(m.get("fpn_channels", 256)))
    _scale_geometry(model, _geometry_scale(params))
    model.train_cfg.rcnn.sampler.num = int(m.get("roi_samples", 512))
    model.roi_head.bbox_head.num_classes = len(classes)
    model.roi_head.mask_head.num_classes = len(classes)

    # ---- data (LSJ numbers)
    img, lo_hi = int(ft["img_size"]), tuple(float(x) for x in ft["lsj_scale"])
    train_pipe = cfg.train_dataloader.dataset.pipeline
    find_transform(train_pipe, "RandomResize").update(scale=(img, img), ratio_range=lo_hi)
    find_transform(train_pipe, "RandomCrop").update(crop_size=(img, img))
    find_transform(train_pipe, "Pad").update(size=(img, img))
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
        necks, shape = family.pyramid(cfg.model.backbone.to_dict(), model_params)
        cfg.model.neck = [ConfigDict(n) for n in necks] + [cfg.model.neck[-1]]
        cfg.model.neck[-1].in_channels = [int(c) for c, _ in shape.values()]
    return cfg
