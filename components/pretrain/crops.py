"""Crop policies for two-view self-supervised learning (object-aware cropping, arXiv 2112.00319).

Why: the usual two random-resized crops assume one large centred object (ImageNet). In scenes
with several small objects (COCO, OpenImages, our built-in scenes) both crops often hold only
background. Mishra et al. replace one or both crops with crops from object proposals (BING).
A policy chooses the two *regions* ``(x1, y1, x2, y2)`` of an image; the SSL method's own view
augmentations (colour jitter, blur, ...) follow. Policies, each a registered function::

    scene_scene     two random-resized crops of the whole image (the usual baseline)
    obj_scene       a crop inside a sampled object box + a scene crop
    obj_obj_dilate  a crop inside the object box + a crop inside the same box dilated
    obj_obj_shift   a crop inside the object box + a crop inside a shifted copy of it

``boxes`` says where object boxes come from: ``bing`` (our BING proposals, cached per image by
the ``proposals`` stage) or ``gt`` (ground-truth boxes: the upper bound the paper reports).
"Inside" a region is a random-resized crop of it with scale ``object_scale`` (mild, the object
stays in view); scene crops use ``scene_scale``. A box is sampled uniformly among the top
``num_proposals`` candidates whose sides are at least ``min_box`` of the image's; an image
without such a box falls back to a scene crop (counted in :attr:`CropSampler.fallbacks`).

Speed: a region is cut and resized in one ``PIL.Image.resize(box=...)`` call, the same work
torchvision's RandomResizedCrop does (``benchmarks/crop_throughput.py`` compares them).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from components.common.registry import Registry

__all__ = ["CropParams", "CropSampler", "POLICIES", "BOX_SOURCES", "register_policy",
           "random_resized_region", "dilate", "shift", "needs_boxes"]

Region = tuple[float, float, float, float]
BOX_SOURCES = ("bing", "gt")


@dataclass(frozen=True)
class CropParams:
    """The knobs of every policy (``pretrain.<method>.crops`` in params.yaml)."""

    policy: str = "scene_scene"
    boxes: str = "bing"                        # bing | gt
    scene_scale: tuple[float, float] = (0.2, 1.0)
    object_scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    dilation: float = 0.5                      # obj_obj_dilate: grow each side by this x box size
    shift: float = 0.3                         # obj_obj_shift: move by up to this x box size
    min_box: float = 0.1                       # candidate side >= this x image side
    num_proposals: int = 10                    # sample among the top-N candidates

    @classmethod
    def from_options(cls, options: Mapping) -> "CropParams":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(options) - known)
        if unknown:
            raise KeyError(f"crop options: unknown keys {unknown}; known: {sorted(known)}")
        kw = dict(options)
        for key in ("scene_scale", "object_scale", "ratio"):
            if key in kw:
                kw[key] = tuple(float(v) for v in kw[key])
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        POLICIES.get(self.policy)
        if self.boxes not in BOX_SOURCES:
            raise ValueError(f"crops.boxes must be one of {BOX_SOURCES}, got {self.boxes!r}")
        for name in ("scene_scale", "object_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"crops.{name} must satisfy 0 < lo <= hi <= 1, got {[lo, hi]}")
        if self.dilation < 0 or self.shift < 0 or not 0 <= self.min_box < 1:
            raise ValueError("crops.dilation and crops.shift must be >= 0, crops.min_box in [0, 1)")
        if self.num_proposals < 1:
            raise ValueError(f"crops.num_proposals must be >= 1, got {self.num_proposals}")


# A policy: (image size (w, h), one object box or None, params, rng) -> two regions.
Policy = Callable[[tuple[int, int], "np.ndarray | None", CropParams, random.Random],
                  tuple[Region, Region]]
POLICIES: Registry[Policy] = Registry("crop policy", "components/pretrain/crops.py + register_policy")
_NEEDS_BOX: set[str] = set()


def register_policy(name: str, *, needs_box: bool) -> Callable[[Policy], Policy]:
    def wrap(fn: Policy) -> Policy:
        POLICIES.register(name, fn, source=fn)
        if needs_box:
            _NEEDS_BOX.add(name)
        return fn
    return wrap


def needs_boxes(policy: str) -> bool:
    """Whether ``policy`` samples object boxes (then a box source must be available)."""
    POLICIES.get(policy)
    return policy in _NEEDS_BOX


def random_resized_region(region: Region, scale: tuple[float, float], ratio: tuple[float, float],
                          rng: random.Random) -> Region:
    """A random sub-rectangle of ``region`` with area fraction in ``scale`` and aspect ratio in
    ``ratio`` (log-uniform), as torchvision's RandomResizedCrop draws it; after 10 misses, the
    largest centred rectangle of an allowed ratio."""
    x1, y1, x2, y2 = region
    w, h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
    area = w * h
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_r))
        cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if 0 < cw <= w and 0 < ch <= h:
            cx, cy = x1 + rng.uniform(0, w - cw), y1 + rng.uniform(0, h - ch)
            return (cx, cy, cx + cw, cy + ch)
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, w / ratio[0]
    elif aspect > ratio[1]:
        cw, ch = h * ratio[1], h
    else:
        cw, ch = w, h
    cx, cy = x1 + (w - cw) / 2, y1 + (h - ch) / 2
    return (cx, cy, cx + cw, cy + ch)


def _clip(box: Sequence[float], size: tuple[int, int]) -> Region:
    W, H = size
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    x1, x2 = min(max(x1, 0.0), W - 1.0), min(max(x2, 1.0), float(W))
    y1, y2 = min(max(y1, 0.0), H - 1.0), min(max(y2, 1.0), float(H))
    return (x1, y1, max(x2, x1 + 1.0), max(y2, y1 + 1.0))


def dilate(box: Sequence[float], factor: float, size: tuple[int, int]) -> Region:
    """``box`` grown by ``factor`` x its width/height on every side, clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dw, dh = factor * (x2 - x1), factor * (y2 - y1)
    return _clip((x1 - dw, y1 - dh, x2 + dw, y2 + dh), size)


def shift(box: Sequence[float], factor: float, size: tuple[int, int], rng: random.Random) -> Region:
    """``box`` moved by up to ``factor`` x its width/height in x and y, kept inside the image."""
    W, H = size
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    dx, dy = rng.uniform(-factor, factor) * w, rng.uniform(-factor, factor) * h
    dx = min(max(dx, -x1), W - x2)
    dy = min(max(dy, -y1), H - y2)
    return _clip((x1 + dx, y1 + dy, x2 + dx, y2 + dy), size)


def _scene(size, p: CropParams, rng) -> Region:
    return random_resized_region((0.0, 0.0, float(size[0]), float(size[1])), p.scene_scale,
                                 p.ratio, rng)


def _inside(region: Region, p: CropParams, rng) -> Region:
    return random_resized_region(region, p.object_scale, p.ratio, rng)


@register_policy("scene_scene", needs_box=False)
def scene_scene(size, box, p: CropParams, rng) -> tuple[Region, Region]:
    """Two random-resized crops of the whole image (MoCo-v2 / BYOL as published)."""
    return _scene(size, p, rng), _scene(size, p, rng)


@register_policy("obj_scene", needs_box=True)
def obj_scene(size, box, p: CropParams, rng) -> tuple[Region, Region]:
    """A crop inside the object box and a scene crop."""
    return _inside(_clip(box, size), p, rng), _scene(size, p, rng)


@register_policy("obj_obj_dilate", needs_box=True)
def obj_obj_dilate(size, box, p: CropParams, rng) -> tuple[Region, Region]:
    """A crop inside the object box and one inside the box dilated by ``dilation``."""
    return _inside(_clip(box, size), p, rng), _inside(dilate(box, p.dilation, size), p, rng)


@register_policy("obj_obj_shift", needs_box=True)
def obj_obj_shift(size, box, p: CropParams, rng) -> tuple[Region, Region]:
    """A crop inside the object box and one inside a copy shifted by up to ``shift``."""
    return _inside(_clip(box, size), p, rng), _inside(shift(box, p.shift, size, rng), p, rng)


class CropSampler:
    """Draws the two regions of one image under :class:`CropParams`.

    ``boxes`` (K, >=4) are the image's candidate object boxes, best first (BING's ranking; GT
    boxes in annotation order). ``fallbacks`` counts images of a box policy that had no box
    of at least ``min_box`` (they got a scene crop instead).
    """

    def __init__(self, params: CropParams, seed: int | None = None) -> None:
        params.validate()
        self.params = params
        self.policy = POLICIES.get(params.policy)
        self.uses_boxes = needs_boxes(params.policy)
        self.rng = random.Random(seed)
        self.fallbacks = 0

    def candidates(self, boxes: "np.ndarray | None", size: tuple[int, int]) -> "np.ndarray":
        """The top ``num_proposals`` boxes whose sides are >= ``min_box`` of the image's."""
        if boxes is None or len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.float32)
        b = np.asarray(boxes, dtype=np.float32)[:, :4]
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep = (w >= self.params.min_box * size[0]) & (h >= self.params.min_box * size[1])
        return b[keep][: self.params.num_proposals]

    def __call__(self, size: tuple[int, int], boxes: "np.ndarray | None") -> tuple[Region, Region]:
        box = None
        if self.uses_boxes:
            cand = self.candidates(boxes, size)
            if len(cand) == 0:
                self.fallbacks += 1
                return scene_scene(size, None, self.params, self.rng)
            box = cand[self.rng.randrange(len(cand))]
        return self.policy(size, box, self.params, self.rng)
