"""What the two-view SSL methods (MoCo-v2, BYOL) share: object-aware data, views, EMA encoders.

Data (``data="custom"``): the images of a detection split (``pretrain.<method>.split``, default
``train``: multi-object scenes; their labels are never used, only GT boxes by the ``gt`` upper
bound) with each image's candidate object boxes: BING proposals from the ``proposals`` stage's
cache (``data/proposals/<split>.npz``) or the COCO ground truth. A
:class:`components.pretrain.crops.CropSampler` picks the two regions, each is cut and resized
in one PIL call, then the method's colour/blur/flip augmentations make the views.

Encoders work on any registered backbone family through the backbone contract's
``pooled_features`` (ResNet: global average pool of C5, the papers' setting; ViT: mean token).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from components.data import layout
from components.models.backbones import family_of
from components.pretrain.crops import CropParams, CropSampler, needs_boxes

__all__ = ["TwoViewDataset", "split_images", "gt_boxes", "proposal_boxes", "object_aware_dataset",
           "view_transform", "PooledEncoder", "momentum_copy", "ema_update", "CROP_DEFAULTS"]

# Defaults of the ``crops`` option of every two-view method (see components/pretrain/crops.py).
CROP_DEFAULTS = {"policy": "scene_scene", "boxes": "bing", "scene_scale": [0.2, 1.0],
                 "object_scale": [0.5, 1.0], "dilation": 0.5, "shift": 0.3, "min_box": 0.1,
                 "num_proposals": 10}


def split_images(root: Path, split: str) -> tuple[list[Path], dict]:
    """The split's image paths (COCO ``images`` order by id) and its COCO dict."""
    path = layout.coco_json(root, split)
    if not path.is_file():
        raise SystemExit(f"no annotations for split {split!r}: {path} is missing; run the "
                         "`prepare` stage first (python -m components.data prepare)")
    coco = json.loads(path.read_text())
    images = sorted(coco.get("images", []), key=lambda im: im["id"])
    if not images:
        raise SystemExit(f"{path} lists no images")
    return [layout.images_dir(root) / im["file_name"] for im in images], coco


def gt_boxes(coco: dict) -> list[np.ndarray]:
    """Per image (COCO ``images`` order by id): non-crowd GT boxes ``(K, 4)`` xyxy pixels."""
    by_image: dict[int, list[list[float]]] = {}
    for ann in coco.get("annotations", []):
        if ann.get("iscrowd"):
            continue
        x, y, w, h = ann["bbox"]
        by_image.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
    images = sorted(coco.get("images", []), key=lambda im: im["id"])
    return [np.asarray(by_image.get(im["id"], []), dtype=np.float32).reshape(-1, 4)
            for im in images]


def proposal_boxes(cache_path: Path, paths: Sequence[Path]) -> list[np.ndarray]:
    """Per image: the cached BING proposals ``(K, 4)``, best first; a clear error when the cache
    is missing or stale for an image (run the ``proposals`` stage)."""
    from components.proposals import load_proposals

    if not Path(cache_path).is_file():
        raise SystemExit(f"BING proposal cache {cache_path} not found: run `dvc repro proposals` "
                         "(python -m components.proposals propose --params params.yaml), or use "
                         "crops.boxes: gt")
    cache = load_proposals(cache_path)
    return [np.asarray(cache.boxes_for(p), dtype=np.float32)[:, :4] for p in paths]


class TwoViewDataset(Dataset):
    """Images + candidate boxes -> ``{"view1", "view2"}`` ``(3, S, S)`` tensors.

    Regions come from ``sampler``; ``views`` are the two per-view augmentations applied to the
    resized regions (PIL in, normalised tensor out). Decoded images are cached in memory.
    """

    def __init__(self, paths: Sequence[Path], boxes: Sequence[np.ndarray | None],
                 sampler: CropSampler, views: tuple[Callable, Callable], img_size: int) -> None:
        if len(paths) != len(boxes):
            raise ValueError(f"{len(paths)} images but {len(boxes)} box lists")
        self.paths, self.boxes = list(paths), list(boxes)
        self.sampler, self.views, self.img_size = sampler, views, int(img_size)
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, i: int):
        from PIL import Image

        if i not in self._cache:
            try:
                with Image.open(self.paths[i]) as im:
                    self._cache[i] = im.convert("RGB")
            except OSError as exc:
                raise SystemExit(f"cannot read image {self.paths[i]}: {exc} (re-run `prepare`/"
                                 "`validate`)") from None
        return self._cache[i]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        img = self._load(i)
        r1, r2 = self.sampler(img.size, self.boxes[i])
        size = (self.img_size, self.img_size)
        v1 = img.resize(size, Image.BICUBIC, box=r1)
        v2 = img.resize(size, Image.BICUBIC, box=r2)
        return {"view1": self.views[0](v1), "view2": self.views[1](v2)}


def object_aware_dataset(cfg, views: tuple[Callable, Callable]) -> tuple[TwoViewDataset, list[Path]]:
    """The dataset a two-view method trains on, from its options ``split``, ``crops`` and
    ``proposals`` (the BING cache folder)."""
    from components.pretrain.config import resolve_path

    crops = CropParams.from_options({**CROP_DEFAULTS, **dict(cfg.opt("crops") or {})})
    split = str(cfg.opt("split"))
    paths, coco = split_images(cfg.data_root, split)
    if needs_boxes(crops.policy):
        boxes = (gt_boxes(coco) if crops.boxes == "gt" else
                 proposal_boxes(resolve_path(cfg.opt("proposals")) / f"{split}.npz", paths))
    else:
        boxes = [None] * len(paths)
    if cfg.max_images > 0:
        paths, boxes = paths[:cfg.max_images], boxes[:cfg.max_images]
    sampler = CropSampler(crops, seed=cfg.seed)
    return TwoViewDataset(paths, boxes, sampler, views, cfg.img_size), paths


def view_transform(*, blur_p: float, solarize_p: float, img_size: int,
                   jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)) -> Callable:
    """Colour jitter (p 0.8), grayscale (p 0.2), Gaussian blur, solarize, horizontal flip,
    normalise: the MoCo-v2 / BYOL view augmentations after the crop."""
    from torchvision import transforms as T

    from components.pretrain.data import normalize

    kernel = 2 * max(1, img_size // 20) + 1  # ~10% of the side, odd
    steps = [T.RandomApply([T.ColorJitter(*jitter)], p=0.8), T.RandomGrayscale(p=0.2)]
    if blur_p > 0:
        steps.append(T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p))
    if solarize_p > 0:
        steps.append(T.RandomSolarize(threshold=128, p=solarize_p))
    steps += [T.RandomHorizontalFlip(), normalize()]
    return T.Compose(steps)


class PooledEncoder(nn.Module):
    """backbone -> family ``pooled_features`` -> head: ``(B, 3, S, S) -> (B, P)``."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self._family = family_of(backbone)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.head(self._family.pooled_features(self.backbone, imgs))


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` (the momentum / target encoder)."""
    other = copy.deepcopy(module)
    other.requires_grad_(False)
    return other


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """``theta_t <- m * theta_t + (1 - m) * theta_o`` for parameters; buffers (BN running
    statistics) are copied."""
    for p_o, p_t in zip(online.parameters(), target.parameters()):
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)
    for b_o, b_t in zip(online.buffers(), target.buffers()):
        b_t.copy_(b_o)
