"""The proposal cache: ``<cache_dir>/<split>.npz``, one entry per image, keyed on
(image file sha256, BING model version).

Why a cache: object-aware cropping asks for an image's proposals at every epoch; BING is
cheap but not free, and the cache makes the proposals a versioned artefact (DVC) tied to the
exact model and image bytes. A re-run reuses every entry whose image bytes and model version
match and recomputes only the rest.

File (``np.load(..., allow_pickle=False)``: strings are fixed-width unicode arrays)::

    format ()        "bing-proposals/1"
    version ()       BING model version every entry was computed with
    top_k ()         proposals kept per image (fewer when an image has fewer windows)
    images_root ()   the folder ``names`` are relative to (project-relative when inside it)
    names (N,)       image file_name, relative to images_root (the COCO file_name)
    sha256 (N,)      sha256 of each image file
    offsets (N+1,)   int64: entry i is boxes[offsets[i]:offsets[i+1]]
    boxes (M, 5)     float32 x1, y1, x2, y2, score, best first
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from components.common.env import PROJECT_ROOT, project_relative
from components.proposals.data import ImageRecord, decode_image, file_sha256, read_bytes

__all__ = ["CACHE_FORMAT", "ProposalCache", "ProposalCacheError", "MissingProposalsError",
           "StaleProposalsError", "load_proposals", "update_cache"]

CACHE_FORMAT = "bing-proposals/1"
PROPOSE_CMD = "python -m components.proposals propose --params params.yaml --splits {split}"


class ProposalCacheError(ValueError):
    """A cache file that cannot be read (corrupt, or not a proposal cache)."""


class MissingProposalsError(KeyError):
    """No entry for an image. ``str()`` is the full message (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0])


class StaleProposalsError(ValueError):
    """An entry computed from other image bytes or another model version."""


def _split_of(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else "<split>"


@dataclass
class ProposalCache:
    """Cached proposals of one split: ``entries[file_name] = (sha256, boxes (K, 5) float32)``."""

    version: str
    top_k: int
    images_root: str
    entries: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    @property
    def root(self) -> Path:
        root = Path(self.images_root)
        return root if root.is_absolute() else PROJECT_ROOT / root

    def _key(self, image: str | Path) -> str:
        text = Path(image).as_posix()
        if text in self.entries:
            return text
        try:
            return Path(image).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return text

    def check_version(self, version: str) -> None:
        """Raise :class:`StaleProposalsError` unless the cache was computed with ``version``."""
        if version != self.version:
            split = _split_of(next(iter(self.entries), ""))
            raise StaleProposalsError(
                f"proposal cache {self.path or ''} was computed with BING model {self.version[:12]}, "
                f"not {version[:12]}: re-run `{PROPOSE_CMD.format(split=split)}`")

    def boxes_for(self, image: str | Path, *, verify: bool = True) -> np.ndarray:
        """``(K, 5)`` float32 proposals (x1, y1, x2, y2, score; best first) of ``image``: a
        ``file_name`` relative to ``images_root`` or a path to the file.

        ``verify``: when the image file exists, check its sha256 against the entry's (a
        :class:`StaleProposalsError` if the image changed). A missing entry raises
        :class:`MissingProposalsError`; both messages say what to run.
        """
        key = self._key(image)
        if key not in self.entries:
            raise MissingProposalsError(
                f"no cached proposals for image {key!r} in {self.path or 'the cache'} "
                f"({len(self)} images of {self.images_root}): run "
                f"`{PROPOSE_CMD.format(split=_split_of(key))}`")
        sha, boxes = self.entries[key]
        file = self.root / key
        if verify and file.is_file():
            now = file_sha256(file)
            if now != sha:
                raise StaleProposalsError(
                    f"cached proposals for image {key!r} are stale: the file changed since they "
                    f"were computed (sha256 {sha[:12]} -> {now[:12]}); re-run "
                    f"`{PROPOSE_CMD.format(split=_split_of(key))}`")
        return boxes

    # ------------------------------------------------------------------ file
    def save(self, path: str | Path) -> Path:
        """Write the cache atomically (sibling temp file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(self.entries)
        boxes = [self.entries[n][1].astype(np.float32).reshape(-1, 5) for n in names]
        offsets = np.zeros(len(names) + 1, np.int64)
        offsets[1:] = np.cumsum([len(b) for b in boxes])
        arrays = {
            "format": np.array(CACHE_FORMAT), "version": np.array(self.version),
            "top_k": np.array(int(self.top_k), np.int64), "images_root": np.array(self.images_root),
            "names": np.array(names, dtype=str).reshape(-1),
            "sha256": np.array([self.entries[n][0] for n in names], dtype=str).reshape(-1),
            "offsets": offsets,
            "boxes": np.concatenate(boxes) if boxes else np.zeros((0, 5), np.float32),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.path = path
        return path


def load_proposals(path: str | Path, *, model_version: str | None = None) -> ProposalCache:
    """Read a cache written by :meth:`ProposalCache.save` (no pickle). ``model_version``: also
    check every entry was computed with that BING model (:meth:`ProposalCache.check_version`)."""
    path = Path(path)
    if not path.is_file():
        split = path.stem
        raise FileNotFoundError(f"no proposal cache at {path}: run "
                                f"`{PROPOSE_CMD.format(split=split)}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != CACHE_FORMAT:
                raise ProposalCacheError(f"{path}: not a {CACHE_FORMAT} file")
            names, shas, offsets = z["names"].tolist(), z["sha256"].tolist(), z["offsets"]
            boxes = z["boxes"]
            cache = ProposalCache(version=str(z["version"]), top_k=int(z["top_k"]),
                                  images_root=str(z["images_root"]), path=path)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, ProposalCacheError):
            raise
        raise ProposalCacheError(f"cannot read proposal cache {path} ({type(exc).__name__}: "
                                 f"{exc}); delete it and re-run the propose stage") from None
    if len(offsets) != len(names) + 1 or len(shas) != len(names) or offsets[-1] != len(boxes):
        raise ProposalCacheError(f"{path}: inconsistent cache arrays; delete it and re-run")
    for i, name in enumerate(names):
        cache.entries[name] = (shas[i], boxes[offsets[i]:offsets[i + 1]])
    if model_version is not None:
        cache.check_version(model_version)
    return cache


def update_cache(model: Any, records: Sequence[ImageRecord], *, top_k: int, images_root: str | Path,
                 old: ProposalCache | None = None,
                 wrap: Callable[[Iterable], Iterable] = lambda it: it) -> tuple[ProposalCache, dict]:
    """Proposals of ``records`` under ``model`` (a ``BingModel``), reusing ``old`` entries whose
    (sha256, model version) match and whose ``top_k`` covers the request.

    Returns ``(cache, counts)`` with counts ``{"images", "reused", "computed", "dropped"}``
    (dropped: old entries of images no longer in ``records``). An unreadable image raises
    :class:`~components.proposals.data.ImageReadError` naming it; nothing is written here.
    """
    reusable = (old is not None and old.version == model.version and old.top_k >= top_k)
    cache = ProposalCache(version=model.version, top_k=int(top_k),
                          images_root=project_relative(images_root))
    reused = computed = 0
    for rec in wrap(records):
        data = read_bytes(rec.path)
        sha = hashlib.sha256(data).hexdigest()
        hit = old.entries.get(rec.file_name) if reusable else None
        if hit is not None and hit[0] == sha:
            cache.entries[rec.file_name] = (sha, hit[1][:top_k])
            reused += 1
            continue
        boxes = model.propose(decode_image(data, rec.path), top_k)
        cache.entries[rec.file_name] = (sha, boxes.astype(np.float32))
        computed += 1
    dropped = len(set(old.entries) - set(cache.entries)) if old is not None else 0
    return cache, {"images": len(cache), "reused": reused, "computed": computed, "dropped": dropped}
