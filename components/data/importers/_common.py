"""Helpers every importer shares: split maps, safe source paths, copying images."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Mapping

from components.data import layout
from components.data.formats import DataFormatError

__all__ = ["UnsafePathError", "split_map", "image_dirs", "safe_source", "copy_image", "lineage"]

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PathLike = str | os.PathLike


class UnsafePathError(DataFormatError):
    """A record's file name is absolute, climbs out with ``..`` or resolves outside its root."""


def split_map(value: Mapping[str, PathLike] | None, what: str) -> dict[str, Path]:
    """``{split: path}`` with safe split names (they become folder and file names)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataFormatError(f"{what}: expected a mapping split -> path (e.g. {{train: /data/x}}), got {value!r}")
    out = {}
    for split, path in value.items():
        split = str(split)
        if not _SPLIT_NAME.match(split) or split == layout.UNLABELED:
            raise DataFormatError(
                f"{what}: split name {split!r} must be letters/digits/._- and not {layout.UNLABELED!r}")
        if not str(path):
            raise DataFormatError(f"{what}.{split}: empty path")
        out[split] = Path(path)
    return out


def image_dirs(images: Mapping[str, PathLike] | PathLike | None, splits: list[str], what: str,
               default: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Image folder per split: a mapping, one folder for all splits, or ``default``."""
    if images is None or (isinstance(images, Mapping) and not images):
        chosen = dict(default or {})
    elif isinstance(images, Mapping):
        chosen = split_map(images, what)
    else:
        chosen = {s: Path(images) for s in splits}
    missing = [s for s in splits if s not in chosen]
    if missing:
        raise DataFormatError(f"{what}: no image folder for split(s) {missing} (give {what} as split -> folder)")
    for split in splits:
        if not chosen[split].is_dir():
            raise DataFormatError(f"{what}.{split}: image folder {chosen[split]} does not exist")
    return {s: chosen[s] for s in splits}


def safe_source(root: Path, rel: object, where: str) -> tuple[Path, str]:
    """``(root/rel, normalised posix rel)`` if ``rel`` stays inside ``root``.

    Refuses empty names, absolute paths, ``..`` components, NUL bytes and symlinks that
    resolve outside ``root``: annotation files are untrusted input, and a copied dataset
    must not pull in arbitrary files from the machine.
    """
    if not isinstance(rel, str) or not rel.strip() or "\x00" in rel:
        raise UnsafePathError(f"{where}: file name {rel!r} is empty or not a string")
    text = rel.replace("\\", "/")
    if text.startswith("/") or os.path.isabs(rel) or re.match(r"^[A-Za-z]:", text):
        raise UnsafePathError(f"{where}: file name {rel!r} is absolute; it must be relative to {root}")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{where}: file name {rel!r} contains '..' and would escape {root}")
    if not parts:
        raise UnsafePathError(f"{where}: file name {rel!r} names no file")
    real_root = Path(os.path.realpath(root))
    path = real_root.joinpath(*parts)
    real = Path(os.path.realpath(path))
    if real_root not in real.parents:
        raise UnsafePathError(f"{where}: file name {rel!r} resolves to {real}, outside {root} (symlink?)")
    return path, "/".join(parts)


def copy_image(src: Path, dst: Path, where: str) -> None:
    if not src.is_file():
        raise DataFormatError(f"{where}: image file {src} not found")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def lineage(kind: str, masks: str, **paths: Mapping[str, Path] | Path | str) -> dict:
    """The manifest ``source`` of an import: kind, mask provenance and the source paths."""
    out: dict = {"kind": kind, "masks": masks}
    for key, value in paths.items():
        out[key] = {s: str(p) for s, p in value.items()} if isinstance(value, Mapping) else str(value)
    return out
