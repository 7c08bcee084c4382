"""Object classes of the synthetic dataset, told apart by SHAPE only.

Each class is a function ``(radius, rng) -> Outline`` in unit-free local
coordinates (centred on the origin, before rotation). Colour and texture are chosen
elsewhere and are independent of the class, so a detector has to learn geometry.
Adding a class is adding a function and a :data:`SHAPES` entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

__all__ = ["Outline", "SHAPES", "SUPERCATEGORY", "PLURAL", "place", "rasterize"]


@dataclass
class Outline:
    """A filled outer polygon minus optional hole polygons; points are (N, 2) float x, y."""

    outer: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)


def _regular(n: int, r: float, phase: float = 0.0) -> np.ndarray:
    a = phase + np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _n_round(r: float) -> int:
    return int(np.clip(r * 1.5, 16, 96))


def circle(r: float, rng: np.random.Generator) -> Outline:
    return Outline(_regular(_n_round(r), r))


def ellipse(r: float, rng: np.random.Generator) -> Outline:
    pts = _regular(_n_round(r), r)
    pts[:, 1] *= rng.uniform(0.35, 0.62)
    return Outline(pts)


def ring(r: float, rng: np.random.Generator) -> Outline:
    n = _n_round(r)
    return Outline(_regular(n, r), [_regular(n, r * rng.uniform(0.45, 0.68))])


def triangle(r: float, rng: np.random.Generator) -> Outline:
    pts = _regular(3, r, -np.pi / 2)
    return Outline(pts * rng.uniform(0.9, 1.1, size=(3, 1)))


def square(r: float, rng: np.random.Generator) -> Outline:
    pts = _regular(4, r, np.pi / 4)
    pts[:, 1] *= rng.uniform(0.8, 1.0)  # squarish, not a long rectangle
    return Outline(pts)


def hexagon(r: float, rng: np.random.Generator) -> Outline:
    return Outline(_regular(6, r))


def star(r: float, rng: np.random.Generator) -> Outline:
    outer = _regular(5, r, -np.pi / 2)
    inner = _regular(5, r * rng.uniform(0.38, 0.5), -np.pi / 2 + np.pi / 5)
    return Outline(np.stack([outer, inner], axis=1).reshape(-1, 2))


def cross(r: float, rng: np.random.Generator) -> Outline:
    a = r * rng.uniform(0.16, 0.24)  # half arm width
    b = r * 0.95
    pts = [(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b),
           (-a, -b), (-a, -a), (-b, -a), (-b, a), (-a, a), (-a, b)]
    return Outline(np.array(pts, dtype=np.float64))


SHAPES: dict[str, Callable[[float, np.random.Generator], Outline]] = {
    "circle": circle,
    "ellipse": ellipse,
    "ring": ring,
    "triangle": triangle,
    "square": square,
    "hexagon": hexagon,
    "star": star,
    "cross": cross,
}
SUPERCATEGORY = {"circle": "round", "ellipse": "round", "ring": "round",
                 "triangle": "polygon", "square": "polygon", "hexagon": "polygon",
                 "star": "symbol", "cross": "symbol"}
PLURAL = {name: name + ("es" if name.endswith(("ss", "x")) else "s") for name in SHAPES}


def place(outline: Outline, cx: float, cy: float, angle: float) -> Outline:
    """Rotate by ``angle`` (radians) and move to (cx, cy) in image pixel coordinates."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]])
    move = np.array([cx, cy])
    return Outline(outline.outer @ rot + move, [h @ rot + move for h in outline.holes])


def rasterize(outline: Outline, size: int) -> np.ndarray:
    """Fill an image-space outline into a (size, size) uint8 {0,1} mask (1/16 px precision)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(outline.outer * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    if outline.holes:
        cv2.fillPoly(mask, [np.round(h * 16).astype(np.int32) for h in outline.holes], 0, cv2.LINE_8, shift=4)
    return mask
