"""``params.yaml`` -> resolved mmengine ``Config`` for ViT + Mask R-CNN fine-tuning.

The structure (model, LSJ pipeline, evaluator, hooks) lives in the Python config files under
``configs/`` (``vitdet_mask_rcnn.py`` composed on ``mask_rcnn_base.py``); this module fills in
every user-facing number by name from params. Transforms and hooks are looked up by their
``type``, never by list position.

params -> config:
  data.out                        data_root of every dataset; COCO classes -> num_classes
  model.size / patch_size /
    pretrain_img_size / attention
    / drop_path / checkpoint /
    activation_checkpointing /
    attn_impl                     model.backbone (PlainViT); neck/FPN in_channels = embed dim
  model.heads                     head upgrades: 'paper' | 'classic' | {fpn_norm, rpn_2conv,
                                    box_4conv1fc, mask_norm: bool} (HEAD_UPGRADES)
  model.adapter                   ViT -> FPN adapter (ADAPTER_LAYOUTS: 'multiscale' | 'simple'
                                    | 'single' = no FPN, the paper's Table 2 ablation)
  model.fpn_channels              FPN / RPN / RoI head width
  model.roi_samples               RoIs sampled per image for the box head
  model.geometry_scale            anchor sizes and RoI-level thresholds x this; 'auto' =
                                    finetune.img_size / 1024 (the paper's geometry, scaled)
  model.cfg_options               expert escape hatch: dotted mmengine keys merged last
  finetune.img_size, lsj_scale    LSJ RandomResize / RandomCrop / Pad, test Resize
  finetune.batch_size/num_workers dataloaders
  finetune.lr/weight_decay/betas  AdamW;  finetune.layer_decay -> layer-wise lr decay
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
from typing import Any, Callable, Mapping

from mmengine.config import Config, ConfigDict

from components.common.env import PROJECT_ROOT
from components.data import layout
from components.models.sizes import get_size
from components.train.schedule import Schedule, lr_schedulers, make_schedule

__all__ = ["CONFIG_DIR", "VIT_CONFIG", "HEAD_VARIANTS", "HEAD_UPGRADES", "head_upgrades",
           "ADAPTER_LAYOUTS", "build_config", "resolve_path",
           "coco_classes", "count_train_images", "dataset_cfg", "schedule_of", "find_transform"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
VIT_CONFIG = CONFIG_DIR / "vitdet_mask_rcnn.py"


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


def _pyramid(model: ConfigDict, mode: str) -> None:
    """Adapter modes that feed the FPN four scales (strides 4-32, + P6 by max-pool)."""
    model.neck[0].mode = mode


def _single_scale(model: ConfigDict) -> None:
    """No feature pyramid (paper Table 2, "no FPN"): the last block's stride-16 map only.

    The FPN keeps one level (a 1x1 lateral + 3x3 output conv, so the heads' width and norms stay
    as in the FPN variants); the RPN gets five anchor scales on that level, 32-512 px like the
    five FPN levels' 8 x stride (both then x ``geometry_scale``), and both RoI extractors read
    stride 16. Everything else equal.
    """
    model.neck[0].mode = "single"
    fpn = model.neck[-1]
    fpn.in_channels = fpn.in_channels[:1]
    fpn.num_outs = 1
    anchors = model.rpn_head.anchor_generator
    anchors.strides = [16]
    anchors.scales = [2, 4, 8, 16, 32]
    for name in ("bbox_roi_extractor", "mask_roi_extractor"):
        model.roi_head[name].featmap_strides = [16]


PAPER_IMG_SIZE = 1024  # the paper's LSJ side: mmdet's anchors (32-512 px) and RoI levels fit it


def _geometry_scale(params: Mapping[str, Any]) -> float:
    """Factor for anchor sizes and RoI-level thresholds (``model.geometry_scale``).

    Why: mmdet's Mask R-CNN geometry is sized for ~1024 px inputs: anchors 32-512 px on strides
    4-64, and RoIs smaller than 112 px pooled from the stride-4 level (``finest_scale`` 56). At a
    CPU-sized 256 px input every object is < 112 px, so all RoIs read the stride-4 map (fed by
    block d/4 only), and the largest anchors are 2x the image. 'auto' shrinks both by
    ``img_size / 1024`` so a 256 px run sees the paper's geometry on its scaled-down scenes.
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


ADAPTER_LAYOUTS: dict[str, Callable[[ConfigDict], None]] = {
    "multiscale": lambda model: _pyramid(model, "multiscale"),
    "simple": lambda model: _pyramid(model, "simple"),
    "single": _single_scale,
}


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
    cfg = Config.fromfile(str(VIT_CONFIG))
    for placeholder in ("IMG", "PAD", "C", "_dataset", "norm_cfg"):
        cfg.pop(placeholder, None)

    classes = coco_classes(layout.coco_json(data_root, "train"))
    sched = schedule_of(params)

    # ---- model
    model = cfg.model
    bb = model.backbone
    bb.size = m["size"]
    bb.patch_size = int(m["patch_size"])
    bb.pretrain_img_size = int(m["pretrain_img_size"])
    bb.attention = m["attention"]
    bb.drop_path_rate = float(m["drop_path"])
    bb.with_cp = bool(m.get("activation_checkpointing", False))
    bb.attn_impl = str(m.get("attn_impl", "fused"))
    bb.pretrained = str(resolve_path(m["checkpoint"])) if m.get("checkpoint") else None
    _apply_head_upgrades(model, head_upgrades(m.get("heads", "paper")))
    adapter = m.get("adapter", "multiscale")
    if adapter not in ADAPTER_LAYOUTS:
        raise ValueError(f"model.adapter must be one of {sorted(ADAPTER_LAYOUTS)}, got {adapter!r}")
    ADAPTER_LAYOUTS[adapter](model)
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

    # ---- expert overrides last (e.g. tiny test models); derived channels follow the backbone
    if m.get("cfg_options"):
        cfg.merge_from_dict(dict(m["cfg_options"]))
    embed = cfg.model.backbone.get("embed_dim") or get_size(cfg.model.backbone.size).embed_dim
    for neck in cfg.model.neck:
        if neck["type"] == "ViTFPNAdapter":
            neck["in_channels"] = embed
        elif neck["type"] == "FPN":
            neck["in_channels"] = [embed] * len(neck["in_channels"])
    return cfg
