"""Detector architectures by name (``model.detector`` in params.yaml): the heads a backbone feeds.

Each entry knows its mmengine config file (composed on ``configs/mask_rcnn_base.py``, which
holds the data pipeline, loops, optimiser and hooks every detector shares), how to attach a
backbone's pyramid (from the backbone contract, :mod:`components.models.backbones`), which
COCO metrics it is scored on, and the registered-model name its champion lives under. So a new
detector is one entry here plus one config file; :func:`components.train.config.build_config`
has no detector-specific branch.

* ``mask_rcnn``: Mask R-CNN with the paper's upgraded heads (Li et al. 2021): FPN over the
  pyramid, RPN, RoI box + mask heads; bbox + segm AP.
* ``ssdlite``: SSDLite (MobileNetV2 paper Sec. 6.3; the MobileViT paper's detector): the
  stride-16 and stride-32 maps, four extra depthwise-separable levels, a depthwise-separable
  SSD head; bbox AP only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from mmengine.config import ConfigDict

from components.common.registry import Registry
from components.models.backbones import BackboneFamily, single_level_anchor_scales

__all__ = ["DETECTORS", "Detector", "get_detector", "detector_of", "MaskRCNN", "SSDLite"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DETECTORS: Registry["Detector"] = Registry("detector", "components/train/detectors.py")


@dataclass(frozen=True)
class ModelContext:
    """What a detector needs to fill in its model config."""

    family: BackboneFamily
    model_params: Mapping[str, Any]   # params.yaml ``model`` (checkpoint made absolute)
    classes: tuple[str, ...]
    img_size: int
    geometry_scale: float


class Detector(ABC):
    """One registered detector architecture."""

    name: ClassVar[str]
    config_file: ClassVar[str]          # under components/train/configs/
    metrics: ClassVar[tuple[str, ...]]  # COCO iou types scored: ("bbox",) or ("bbox", "segm")
    registered_name: ClassVar[str]      # MLflow registered model (register.model_name "")
    reads: ClassVar[tuple[str, ...]] = ()  # its own ``model.*`` keys (documentation)

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / self.config_file

    @property
    def with_masks(self) -> bool:
        return "segm" in self.metrics

    @abstractmethod
    def configure(self, model: ConfigDict, ctx: ModelContext) -> None:
        """Fill ``model`` (the config's ``model`` dict; backbone already set) for ``ctx``."""

    def attach_backbone_overrides(self, model: ConfigDict, ctx: ModelContext) -> None:
        """Re-derive the necks' inputs after ``model.cfg_options`` changed the backbone."""
        self.configure(model, ctx)


def get_detector(name: str) -> Detector:
    return DETECTORS.get(name)


def detector_of(params: Mapping[str, Any]) -> Detector:
    """The detector ``params.model.detector`` names (default ``mask_rcnn``)."""
    return get_detector(str(params["model"].get("detector", "mask_rcnn") or "mask_rcnn"))


# --------------------------------------------------------------------------- Mask R-CNN
HEAD_UPGRADES = ("fpn_norm", "rpn_2conv", "box_4conv1fc", "mask_norm")
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


def _fpn_of(model: ConfigDict) -> ConfigDict:
    return model.neck if isinstance(model.neck, Mapping) else model.neck[-1]


def _attach_pyramid(model: ConfigDict, necks: list[dict],
                    shape: Mapping[str, tuple[int, int]]) -> None:
    """Necks before the FPN, and the FPN / anchors / RoI extractors sized for ``shape``.

    Several levels: FPN over them plus one max-pooled level (P6), one anchor size per level
    (8 x stride, then x ``geometry_scale``), RoIs pooled from the levels. One level (the paper's
    "no FPN" row): the FPN keeps one level (a 1x1 lateral + 3x3 output conv, so the heads'
    width and norms stay as in the FPN variants), the RPN gets five anchor scales on it,
    the same sizes as the five FPN levels' anchors, and both RoI extractors read it.
    """
    fpn = _fpn_of(model)
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


def _scale_geometry(model: ConfigDict, factor: float) -> None:
    """Anchor scales and both RoI extractors' ``finest_scale`` x ``factor``."""
    anchors = model.rpn_head.anchor_generator
    anchors.scales = [float(s) * factor for s in anchors.scales]
    for name in ("bbox_roi_extractor", "mask_roi_extractor"):
        model.roi_head[name].finest_scale *= factor


class MaskRCNN(Detector):
    """Mask R-CNN, paper heads; reads ``heads``, ``fpn_channels``, ``roi_samples``."""

    name = "mask_rcnn"
    config_file = "mask_rcnn.py"
    metrics = ("bbox", "segm")
    registered_name = "vitdet-maskrcnn"
    reads = ("heads", "fpn_channels", "roi_samples", "geometry_scale")

    def configure(self, model: ConfigDict, ctx: ModelContext) -> None:
        m = ctx.model_params
        _attach_pyramid(model, *ctx.family.pyramid(model.backbone.to_dict(), m))
        _apply_head_upgrades(model, head_upgrades(m.get("heads", "paper")))
        _set_width(model, int(m.get("fpn_channels", 256)))
        _scale_geometry(model, ctx.geometry_scale)
        model.train_cfg.rcnn.sampler.num = int(m.get("roi_samples", 512))
        model.roi_head.bbox_head.num_classes = len(ctx.classes)
        model.roi_head.mask_head.num_classes = len(ctx.classes)

    def attach_backbone_overrides(self, model: ConfigDict, ctx: ModelContext) -> None:
        necks, shape = ctx.family.pyramid(model.backbone.to_dict(), ctx.model_params)
        model.neck = [ConfigDict(n) for n in necks] + [model.neck[-1]]
        model.neck[-1].in_channels = [int(c) for c, _ in shape.values()]


# --------------------------------------------------------------------------- SSDLite
SSD_STRIDES = (16, 32)  # the backbone maps SSDLite reads (MobileNetV2 / MobileViT papers)
SSD_REFERENCE_SIZE = 320  # mmdet's ssdlite_mobilenetv2 anchors are sized for 320 px
# mmdet's ssdlite_mobilenetv2-scratch_8xb24-600e_coco anchor sizes (px at 320 px), per level
SSD_MIN_SIZES = (48, 100, 150, 202, 253, 304)
SSD_MAX_SIZES = (100, 150, 202, 253, 304, 320)


def ssd_level_strides(img_size: int) -> list[int]:
    """Effective strides of the six SSDLite levels at ``img_size``: the backbone's 16 and 32,
    then four stride-2 (padding 1) extra convs, each ``ceil(f / 2)`` cells."""
    cells = [-(-img_size // 16), -(-img_size // 32)]
    while len(cells) < 6:
        cells.append(-(-cells[-1] // 2))
    return [max(1, round(img_size / c)) for c in cells]


class SSDLite(Detector):
    """SSDLite on the stride-16/32 maps; reads ``ssd_width`` (the extra levels' channels x
    this; 1.0 = mmdet's 512/256/256/128) and ``geometry_scale`` (anchor sizes x this)."""

    name = "ssdlite"
    config_file = "ssdlite.py"
    metrics = ("bbox",)
    registered_name = "vitdet-ssdlite"
    reads = ("ssd_width", "geometry_scale")

    def configure(self, model: ConfigDict, ctx: ModelContext) -> None:
        necks, shape = ctx.family.pyramid(model.backbone.to_dict(), ctx.model_params)
        strides = [s for _, s in shape.values()]
        missing = [s for s in SSD_STRIDES if s not in strides]
        if missing:
            raise ValueError(
                f"model.detector ssdlite reads the stride-16 and stride-32 maps, but backbone "
                f"{ctx.family.name!r} gives strides {strides}; choose a backbone/adapter with "
                f"both (e.g. model.backbone mobilevit | mobilenetv2 | resnet, or vit with "
                f"adapter multiscale)")
        indices = [strides.index(s) for s in SSD_STRIDES]
        channels = [int(list(shape.values())[i][0]) for i in indices]
        width = float(ctx.model_params.get("ssd_width", 1.0))
        extra = [max(8, int(round(c * width))) for c in (512, 256, 256, 128)]
        levels = channels + extra
        neck = model.neck[-1] if isinstance(model.neck, list) else model.neck
        neck.update(in_channels=channels, out_channels=levels)
        model.neck = ([ConfigDict(n) for n in necks]
                      + [ConfigDict(type="SelectLevels", indices=indices), neck])
        head = model.bbox_head
        head.in_channels = levels
        head.num_classes = len(ctx.classes)
        scale = ctx.img_size / SSD_REFERENCE_SIZE * ctx.geometry_scale
        head.anchor_generator.update(
            strides=ssd_level_strides(ctx.img_size),
            min_sizes=[round(s * scale, 2) for s in SSD_MIN_SIZES],
            max_sizes=[round(s * scale, 2) for s in SSD_MAX_SIZES])


DETECTORS.register("mask_rcnn", MaskRCNN())
DETECTORS.register("ssdlite", SSDLite())
