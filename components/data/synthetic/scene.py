"""One synthetic multi-object scene: cluttered background, occluding objects, exact masks.

Why this design: a Mask R-CNN on centred single shapes saturates in minutes. Here the
difficulty knobs of ``params.yaml`` ``data.synthetic`` are real: many objects of widely
varying (log-uniform) size, random rotation, colour/texture that say nothing about the
class, objects partially hidden by later ones, truncation at the border, and a background
of gradients, low-frequency noise, stripes, lines, arcs and irregular blobs (shape-like
distractors that belong to no class).

Masks are exact because the image is composited *from* them: each object's mask is
rasterised first, its texture is pasted through the mask, and the visible mask of an
object is its mask minus every later object's mask. Objects are only accepted if no
earlier object loses more than ``occlusion`` of its in-image area or drops under a
minimum visible area, so every painted object is annotated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from components.data.synthetic.shapes import SHAPES, place, rasterize

__all__ = ["PALETTE", "SceneObject", "Scene", "render_scene", "min_visible_area"]

# Named colours (RGB): captions name the colour an object was painted with.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "green": (40, 165, 60), "blue": (40, 80, 215), "yellow": (235, 210, 40),
    "orange": (240, 135, 30), "purple": (135, 60, 175), "pink": (240, 135, 190), "cyan": (40, 200, 210),
    "white": (240, 240, 240), "black": (25, 25, 25), "gray": (128, 128, 128), "brown": (125, 80, 40),
}
_COLOUR_NAMES = tuple(PALETTE)
_TEXTURES = ("solid", "stripes", "checker", "noise", "gradient")
_TEXTURE_P = (0.3, 0.2, 0.15, 0.2, 0.15)
BACKGROUNDS = ("plain", "gradient", "noisy", "striped", "cluttered")


@dataclass
class SceneObject:
    """One annotated object (or the one crowd group) of a scene.

    ``visible``: (S, S) uint8 {0,1} mask of the pixels that show this object in the image;
    it is zero outside ``box`` (so work on ``visible[box]`` windows, not the whole image).
    ``drawn_area``: its in-image pixels before later objects covered part of it.
    """

    category: str
    colour: str
    size: str            # small | medium | large (for captions)
    scale: float         # diameter as a fraction of the image side
    visible: np.ndarray
    drawn_area: int
    visible_area: int
    truncated: bool      # the full shape extends past the image border
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) around the drawn mask
    iscrowd: bool = False

    @property
    def occluded(self) -> bool:
        return self.visible_area < self.drawn_area

    def visible_box(self) -> tuple[int, int, int, int]:
        """Tight x0, y0, x1, y1 (exclusive) of the visible pixels."""
        x0, y0, x1, y1 = self.box
        ys, xs = np.nonzero(self.visible[y0:y1, x0:x1])
        return x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1

    def centre(self) -> tuple[float, float]:
        """Mean x, y of the visible pixels."""
        x0, y0, x1, y1 = self.box
        ys, xs = np.nonzero(self.visible[y0:y1, x0:x1])
        return x0 + float(xs.mean()), y0 + float(ys.mean())


@dataclass
class Scene:
    image: np.ndarray            # (S, S, 3) uint8 RGB
    objects: list[SceneObject]   # draw order (a crowd group, if any, first)
    background: str              # one of BACKGROUNDS, for captions


def min_visible_area(size: int) -> int:
    """Smallest visible area (pixels) an annotated object may keep."""
    return max(12, int(0.00025 * size * size))


def _size_word(scale: float) -> str:
    return "small" if scale < 0.12 else "medium" if scale < 0.25 else "large"


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcastable x (1, w) and y (h, 1) pixel coordinates."""
    return np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 fill for an object: a random texture around the base colour."""
    kind = _TEXTURES[rng.choice(len(_TEXTURES), p=_TEXTURE_P)]
    shade = base * 0.45 if base.mean() > 110 else base * 0.5 + 120
    if kind == "solid":
        return np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    if kind == "noise":
        return base + rng.standard_normal((h, w, 3), dtype=np.float32) * 28
    xx, yy = _grid(h, w)
    angle = rng.uniform(0, np.pi)
    proj = xx * np.cos(angle) + yy * np.sin(angle)
    if kind == "stripes":
        t = ((proj / rng.uniform(3, 9)) % 1.0 < 0.5).astype(np.float32)
    elif kind == "checker":
        cell = rng.integers(2, 7)
        t = ((xx // cell + yy // cell) % 2).astype(np.float32)
    else:  # gradient
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    t = t[..., None]
    return base * (1 - t) + shade * t


def _background(rng: np.random.Generator, size: int, clutter: float) -> tuple[np.ndarray, str]:
    """(size, size, 3) uint8 RGB background and a word for it (one of BACKGROUNDS)."""
    # Smooth parts (gradient + low-frequency "clouds") at 1/4 resolution, then upsampled.
    low = max(8, size // 4)
    xx, yy = _grid(low, low)
    c1, c2 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    proj = xx * np.cos(angle) + yy * np.sin(angle)
    t = ((proj - proj.min()) / max(float(np.ptp(proj)), 1.0))[..., None]
    strength = rng.uniform(0.2, 1.0)
    img = c1 + (c2 - c1) * t * strength
    kind = "gradient" if strength > 0.6 else "plain"
    if clutter > 0:
        k = int(rng.integers(3, 9))
        clouds = cv2.resize(rng.standard_normal((k, k, 3)).astype(np.float32), (low, low),
                            interpolation=cv2.INTER_CUBIC)
        img = img + clouds * (45 * clutter)
        if clutter > 0.3:
            kind = "noisy"
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if clutter > 0 and rng.random() < 0.5 * clutter:
        # sin(a x + b y + p) as a sum of two outer products: no (size, size) trig.
        freq, phase = rng.uniform(0.3, 1.2), rng.uniform(0, 6)
        ax = np.arange(size) * np.cos(angle) * freq
        ay = np.arange(size) * np.sin(angle) * freq + phase
        stripes = (np.outer(np.cos(ay), np.sin(ax)) + np.outer(np.sin(ay), np.cos(ax))).astype(np.float32)
        img += stripes[..., None] * (rng.uniform(8, 25) * clutter)
        kind = "striped"
    img = np.clip(img, 0, 255).astype(np.uint8)
    n_lines, n_arcs, n_blobs = rng.poisson((10 * clutter, 3 * clutter, 5 * clutter))
    for _ in range(n_lines):
        p1, p2 = rng.integers(-size // 4, size + size // 4, (2, 2))
        cv2.line(img, tuple(map(int, p1)), tuple(map(int, p2)), _rand_colour(rng), int(rng.integers(1, 4)),
                 cv2.LINE_AA)
    for _ in range(n_arcs):
        centre = tuple(map(int, rng.integers(0, size, 2)))
        axes = tuple(map(int, rng.integers(3, max(4, size // 4), 2)))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), start, start + float(rng.uniform(60, 270)),
                    _rand_colour(rng), int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(n_blobs):  # irregular polygons: shape-like, but no class
        n = int(rng.integers(7, 13))
        r = size * rng.uniform(0.02, 0.12) * rng.uniform(0.5, 1.0, n)
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        centre = rng.uniform(0, size, 2)
        pts = np.stack([centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)], 1)
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], _rand_colour(rng), cv2.LINE_AA, shift=4)
    if n_lines + n_arcs + n_blobs >= 8:
        kind = "cluttered"
    return img, kind


def _rand_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _base_colour(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    name = _COLOUR_NAMES[rng.integers(len(_COLOUR_NAMES))]
    rgb = np.clip(np.array(PALETTE[name], np.float32) + rng.normal(0, 10, 3), 0, 255).astype(np.float32)
    return name, rgb


def _bbox(outline_pts: np.ndarray, size: int) -> tuple[int, int, int, int, bool]:
    lo = outline_pts.min(0)
    hi = outline_pts.max(0)
    truncated = bool((lo < 0).any() or (hi > size).any())
    x0, y0 = np.clip(np.floor(lo).astype(int) - 1, 0, size)
    x1, y1 = np.clip(np.ceil(hi).astype(int) + 2, 0, size)
    return int(x0), int(y0), int(x1), int(y1), truncated


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[slice, slice] | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _fits(mask: np.ndarray, box: tuple[int, int, int, int], placed: list[SceneObject],
          keep: float, min_vis: int) -> list[tuple[SceneObject, tuple[slice, slice], int]] | None:
    """(object, window, pixels lost) for earlier objects ``mask`` would cover, or None if
    drawing it would hide more than allowed of any of them."""
    hits = []
    for p in placed:
        win = _overlap(box, p.box)
        if win is None:
            continue
        lost = int(np.count_nonzero(p.visible[win] & mask[win]))
        if lost == 0:
            continue
        left = p.visible_area - lost
        if left < keep * p.drawn_area or left < min_vis:
            return None
        hits.append((p, win, lost))
    return hits


def _paint(img: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], fill: np.ndarray) -> None:
    """Paste ``fill`` (box-sized, float) into ``img`` where ``mask`` is set inside ``box``."""
    x0, y0, x1, y1 = box
    sel = mask[y0:y1, x0:x1].astype(bool)
    img[y0:y1, x0:x1][sel] = np.clip(fill[sel], 0, 255).astype(np.uint8)


def _crowd(rng: np.random.Generator, size: int, classes: tuple[str, ...]
           ) -> tuple[str, np.ndarray, tuple[int, int, int, int], float]:
    """A dense group of small same-class shapes, annotated once with ``iscrowd=1``."""
    category = classes[rng.integers(len(classes))]
    cx, cy = rng.uniform(0.2 * size, 0.8 * size, 2)
    spread = size * rng.uniform(0.07, 0.14)
    mask = np.zeros((size, size), np.uint8)
    member = 0.0
    for _ in range(int(rng.integers(7, 16))):
        diameter = max(5.0, size * rng.uniform(0.03, 0.055))
        member = max(member, diameter / size)
        x, y = rng.normal((cx, cy), spread)
        outline = place(SHAPES[category](diameter / 2, rng), x, y, rng.uniform(0, 2 * np.pi))
        mask |= rasterize(outline, size)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
    return category, mask, box, member


def render_scene(rng: np.random.Generator, cfg: Mapping[str, Any], crowd: bool = False) -> Scene:
    """Render one scene from the ``data.synthetic`` config (see ``params.yaml``)."""
    size = int(cfg["image_size"])
    lo, hi = (int(v) for v in cfg["objects_per_image"])
    smin, smax = (float(v) for v in cfg["scale_range"])
    keep = 1.0 - float(cfg["occlusion"])
    clutter = float(cfg["clutter"])
    min_vis = min_visible_area(size)
    classes = tuple(cfg.get("classes") or SHAPES)

    img, background = _background(rng, size, clutter)
    placed: list[SceneObject] = []
    if crowd:
        category, mask, box, member = _crowd(rng, size, classes)
        area = int(mask.sum())
        if area >= min_vis:
            colour, base = _base_colour(rng)
            _paint(img, mask, box, _texture(rng, box[3] - box[1], box[2] - box[0], base))
            placed.append(SceneObject(category, colour, "small", member, mask, area, area,
                                      truncated=False, box=box, iscrowd=True))

    log_lo, log_hi = np.log(smin), np.log(smax)
    for k in range(int(rng.integers(lo, hi + 1))):
        for _ in range(60 if k < lo else 8):
            category = classes[rng.integers(len(classes))]
            scale = float(np.exp(rng.uniform(log_lo, log_hi)))
            radius = scale * size / 2
            cx, cy = rng.uniform(-0.05 * size, 1.05 * size, 2)
            outline = place(SHAPES[category](radius, rng), cx, cy, rng.uniform(0, 2 * np.pi))
            x0, y0, x1, y1, truncated = _bbox(outline.outer, size)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            mask = rasterize(outline, size)
            area = int(np.count_nonzero(mask[y0:y1, x0:x1]))
            if area < min_vis:
                continue
            hits = _fits(mask, (x0, y0, x1, y1), placed, keep, min_vis)
            if hits is None:
                continue
            for p, win, lost in hits:
                p.visible[win] &= 1 - mask[win]
                p.visible_area -= lost
            colour, base = _base_colour(rng)
            _paint(img, mask, (x0, y0, x1, y1), _texture(rng, y1 - y0, x1 - x0, base))
            placed.append(SceneObject(category, colour, _size_word(scale), scale, mask, area, area,
                                      truncated, (x0, y0, x1, y1)))
            break

    # Uneven lighting, a little defocus and sensor-like luminance noise over everything
    # (objects included): colour alone stops being a clean cue. Masks stay exact.
    noisy = img.astype(np.float32)
    if clutter > 0:
        light = rng.uniform(-1, 1, (3, 3, 1)).astype(np.float32) * (0.2 * clutter) + 1.0
        noisy *= cv2.resize(light, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
        if rng.random() < 0.3 * clutter:
            noisy = cv2.GaussianBlur(noisy, (0, 0), rng.uniform(0.5, 1.1))
    noisy += rng.standard_normal((size, size, 1), dtype=np.float32) * (2.0 + 6.0 * clutter)
    np.clip(noisy, 0, 255, out=noisy)
    return Scene(noisy.astype(np.uint8), placed, background)

