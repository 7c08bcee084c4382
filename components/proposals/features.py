"""Normed gradients (NG): BING's 64-D window feature, computed for every window at once.

A ``W x H`` window of an image becomes an ``8 x 8`` window of the image resized by
``(8 / W, 8 / H)``; its feature is the NG map of that resized image under the window. So one
resize + one gradient pass per quantized size gives the features of *all* windows of that size
(stride ``W / 8`` by ``H / 8`` pixels in the original image), and scoring them is one 8x8
correlation (:mod:`components.proposals.bing`).

NG of an RGB image (Cheng et al. 2014, their reference ``gradientRGB``): per pixel,
``gx = max_c |I_c(x+1) - I_c(x-1)|`` and ``gy`` likewise down the column (simple ``[-1, 0, 1]``
differences, the image edge replicated), then ``min(gx + gy, 255)`` as uint8.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["WIN", "as_rgb", "ng_map", "resized_shape", "window_features"]

WIN = 8  # the NG window side: features are WIN x WIN = 64-D
_INTERP = cv2.INTER_LINEAR


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 (a grey ``(H, W)`` or ``(H, W, 1)`` image is repeated, RGBA cut)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def ng_map(image: np.ndarray) -> np.ndarray:
    """NG of ``image`` ``(h, w, 3)`` or ``(h, w)`` uint8 (any channel order) -> ``(h, w)`` uint8."""
    pad = cv2.copyMakeBorder(image, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    gx = gy = None
    # Planar: OpenCV's element-wise ops are SIMD on contiguous rows; a channel-strided view
    # of an interleaved image is not, and costs ~7x more at 400x300.
    for plane in (cv2.split(pad) if pad.ndim == 3 else (pad,)):
        dx = cv2.absdiff(plane[1:-1, 2:], plane[1:-1, :-2])   # |a - b| fits in uint8
        dy = cv2.absdiff(plane[2:, 1:-1], plane[:-2, 1:-1])
        gx = dx if gx is None else cv2.max(gx, dx)
        gy = dy if gy is None else cv2.max(gy, dy)
    return cv2.add(gx, gy)  # saturating: min(gx + gy, 255)


def resized_shape(img_w: int, img_h: int, win_w: int, win_h: int) -> tuple[int, int]:
    """``(rw, rh)``: the size the image is resized to so a ``win_w x win_h`` window is 8x8.
    Either is < 8 when the window does not fit in the image."""
    return int(round(img_w * WIN / win_w)), int(round(img_h * WIN / win_h))


def window_features(image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """NG features of arbitrary boxes: ``(N, 4)`` x1, y1, x2, y2 -> ``(N, 64)`` float32.

    Each box is warped to 8x8 with a one-pixel margin (10x10, bilinear, edge replicated) and
    the inner 8x8 of its NG map is kept, so gradients at the window's border see the pixels
    next to it, as they do in the whole-image maps :func:`ng_map` gives at inference.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), WIN * WIN), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        sx, sy = WIN / max(x2 - x1, 1e-6), WIN / max(y2 - y1, 1e-6)
        # cv2 pixel centres: dst u + 0.5 = (src x + 0.5 - x1) * sx + 1 (the margin)
        m = np.array([[sx, 0.0, sx * (0.5 - x1) + 0.5], [0.0, sy, sy * (0.5 - y1) + 0.5]])
        patch = cv2.warpAffine(image, m, (WIN + 2, WIN + 2), flags=_INTERP,
                               borderMode=cv2.BORDER_REPLICATE)
        out[i] = ng_map(patch)[1:-1, 1:-1].ravel()
    return out
