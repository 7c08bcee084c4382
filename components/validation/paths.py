"""Path safety: a record's image path must stay inside the dataset's ``images/`` folder.

Why: ``file_name`` / ``image`` / ``ImageID`` come from untrusted annotation files. A value
like ``../../etc/passwd``, ``/abs/path`` or a symlink pointing elsewhere would make training
(or this gate) read files outside the dataset, and the DVC-tracked dataset would no longer
describe what the model saw.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


class UnsafePath(ValueError):
    """The path is empty, absolute, climbs with ``..`` or resolves outside the root."""


def resolve_inside(root: Path, rel: str) -> Path:
    """Return ``root/rel`` if it is a safe relative path that stays under ``root``.

    ``root`` should already be resolved (``Path.resolve()``). Symlinks inside ``root`` are
    allowed as long as their target is also inside ``root``. Raises :class:`UnsafePath`.
    """
    if not isinstance(rel, str) or not rel.strip():
        raise UnsafePath("image path is empty")
    if "\x00" in rel:
        raise UnsafePath("image path contains a NUL byte")
    if rel.startswith(("/", "\\")) or os.path.isabs(rel) or PurePosixPath(rel).is_absolute() or (
            len(rel) > 1 and rel[1] == ":"):
        raise UnsafePath(f"absolute image path {rel!r}")
    parts = rel.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafePath(f"{rel!r} climbs out with '..'")
    path = root / rel
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise UnsafePath(f"{rel!r} resolves outside images/ (symlink to {real})")
    return path
