"""Global image embeddings of a frozen backbone (any registered family)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch
from torch import nn

from components.models.backbones import family_of
from components.pretrain.common import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["extract_features", "to_tensor"]

ImageLike = Union[str, Path, "PIL.Image.Image"]  # noqa: F821


def to_tensor(image: ImageLike, img_size: int) -> torch.Tensor:
    """An image (path or PIL) -> ``(3, S, S)`` resized (bilinear, no crop), ImageNet-normalised."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as im:
                image = im.convert("RGB")
        except OSError as exc:
            raise SystemExit(f"cannot read image {image}: {exc} (re-run `prepare`)") from None
    img = image.convert("RGB").resize((img_size, img_size), Image.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    x = x.view(img_size, img_size, 3).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def extract_features(backbone: nn.Module, images: Sequence[ImageLike], img_size: int,
                     batch_size: int = 64, device: str = "cpu") -> torch.Tensor:
    """``(N, C)`` float32 embeddings: the family's ``pooled_features`` on each resized image.

    The backbone is put in eval mode (BatchNorm statistics frozen) and restored afterwards.
    """
    family = family_of(backbone)
    was_training = backbone.training
    backbone.eval()  # mmdet's ResNet.train() returns None: no chaining
    backbone.to(device)
    out: list[torch.Tensor] = []
    try:
        for start in range(0, len(images), batch_size):
            batch = torch.stack([to_tensor(im, img_size) for im in images[start:start + batch_size]])
            out.append(family.pooled_features(backbone, batch.to(device)).float().cpu())
    finally:
        backbone.train(was_training)
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)
