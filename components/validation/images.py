"""Per-file image checks, done in plain Python before the GX suites run.

Each referenced image goes through the same ordered rules; the first one broken stops the
rest (a missing file cannot be decoded). Results are cached per path, so an image referenced
by COCO, OpenImages and captions at once is opened once.

Order and meaning of the rules (the column names the suites feed to GX):

==================== ====================================================================
``img_path_safe``    relative, no ``..``, resolves (symlinks too) inside ``images/``
``img_exists``       a regular file exists there
``img_nonempty``     file size > 0 bytes
``img_readable``     Pillow identifies the format from the header
``img_max_pixels``   width*height from the header <= ``validation.max_pixels``; checked
                     BEFORE any decode, Pillow's own bomb check is switched off here so the
                     limit is ours
``img_decodes``      full decode succeeds with truncated images refused (only when
                     ``validation.decode_images``; otherwise not evaluated)
==================== ====================================================================

Sizes are reported *after* EXIF orientation for JPEGs: mmdet loads images with OpenCV's
``IMREAD_COLOR`` which applies the EXIF Orientation tag, so the width/height a COCO record
must carry is the one the trainer sees (orientations 5-8 swap width and height). Other
formats' EXIF orientation is ignored (reading it from a PNG would need a full decode).
"""
from __future__ import annotations

import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image, ImageFile
from tqdm import tqdm

from components.validation.paths import UnsafePath, resolve_inside

RULES = ("img_path_safe", "img_exists", "img_nonempty", "img_readable", "img_max_pixels",
         "img_decodes")
RULE_TEXT = {
    "img_path_safe": "image path must stay inside images/",
    "img_exists": "image file must exist",
    "img_nonempty": "image file must not be empty (0 bytes)",
    "img_readable": "image header must be readable",
    "img_max_pixels": "image must not exceed validation.max_pixels",
    "img_decodes": "image must decode fully (not truncated/corrupt)",
}
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


@dataclass
class ImageCheck:
    """Outcome for one image path. ``failed`` is the first broken rule (None = all good)."""
    rel: str
    failed: str | None = None
    why: str | None = None
    width: int | None = None          # after EXIF orientation (what cv2 IMREAD_COLOR yields)
    height: int | None = None
    path: Path | None = None
    decoded: bool | None = None       # None = not attempted

    def status(self, rule: str) -> bool | None:
        """True/False for evaluated rules, None for rules after the first failure."""
        if self.failed is None:
            return self.decoded if rule == "img_decodes" else True
        order = RULES.index(rule)
        broke = RULES.index(self.failed)
        if order < broke:
            return True
        return False if order == broke else None


@contextmanager
def _pillow_strict() -> Iterator[None]:
    """Our own pixel limit instead of Pillow's; never accept truncated files."""
    old_max, old_trunc = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = None
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old_max, old_trunc


class ImageChecker:
    """Checks image files under ``<dataset>/images`` with a per-path cache.

    Args:
        images_root: the dataset's ``images/`` folder.
        max_pixels: reject images whose header declares more than this many pixels.
        decode: fully decode each image (catches truncation; slower).
        workers: threads for the decode pass (Pillow releases the GIL while decoding).
        progress: show tqdm bars.
    """

    def __init__(self, images_root: Path, max_pixels: int, decode: bool = True,
                 workers: int | None = None, progress: bool = True) -> None:
        self.root = Path(os.path.realpath(images_root))
        self.max_pixels = int(max_pixels)
        self.decode = bool(decode)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.progress = progress
        self.cache: dict[str, ImageCheck] = {}
        self.seconds = {"header": 0.0, "decode": 0.0}

    def check(self, rels: Iterable[str]) -> dict[str, ImageCheck]:
        """Check every distinct path (relative to ``images/``); returns ``{rel: ImageCheck}``."""
        wanted = list(dict.fromkeys(rels))
        todo = [r for r in wanted if r not in self.cache]
        if todo:
            with _pillow_strict():
                t0 = time.perf_counter()
                checks = [self._header(r) for r in tqdm(
                    todo, desc="image headers", unit="img", disable=not self.progress,
                    leave=False)]
                self.seconds["header"] += time.perf_counter() - t0
                if self.decode:
                    t0 = time.perf_counter()
                    ok = [c for c in checks if c.failed is None]
                    with ThreadPoolExecutor(self.workers) as pool:
                        for _ in tqdm(pool.map(self._decode, ok), total=len(ok),
                                      desc="image decode", unit="img",
                                      disable=not self.progress, leave=False):
                            pass
                    self.seconds["decode"] += time.perf_counter() - t0
            self.cache.update({c.rel: c for c in checks})
        return {r: self.cache[r] for r in wanted}

    def _header(self, rel: str) -> ImageCheck:
        check = ImageCheck(rel=rel)
        try:
            path = resolve_inside(self.root, rel)
        except UnsafePath as err:
            return _fail(check, "img_path_safe", str(err))
        check.path = path
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return _fail(check, "img_exists", f"images/{rel} not found")
        except OSError as err:
            return _fail(check, "img_exists", f"images/{rel}: {err.strerror}")
        if not stat.S_ISREG(st.st_mode):
            return _fail(check, "img_exists", f"images/{rel} is not a regular file")
        if st.st_size == 0:
            return _fail(check, "img_nonempty", f"images/{rel} is a zero-byte file")
        try:
            with Image.open(path) as im:
                width, height = im.size
                orientation = 1
                if im.format in ("JPEG", "MPO"):
                    orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        except Exception as err:  # noqa: BLE001 - any decoder error means "unreadable"
            return _fail(check, "img_readable", f"images/{rel}: {type(err).__name__}: {err}")
        if width * height > self.max_pixels:
            return _fail(check, "img_max_pixels",
                         f"images/{rel} declares {width}x{height} = {width * height} pixels "
                         f"> validation.max_pixels {self.max_pixels} (decompression bomb?)")
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        check.width, check.height = width, height
        return check

    def _decode(self, check: ImageCheck) -> None:
        try:
            with Image.open(check.path) as im:
                im.load()
            check.decoded = True
        except Exception as err:  # noqa: BLE001 - truncated/corrupt data surfaces in many types
            check.decoded = False
            _fail(check, "img_decodes", f"images/{check.rel}: {type(err).__name__}: {err}")


def _fail(check: ImageCheck, rule: str, why: str) -> ImageCheck:
    check.failed, check.why = rule, why
    return check
