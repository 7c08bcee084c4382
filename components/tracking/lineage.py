"""Lineage facts recorded on every MLflow run: code version, package versions, data version.

Why: a metric is only meaningful next to the exact code, libraries and data that produced it,
and the promotion gate compares models only when they were evaluated on the same data.

The data version is DVC's own hash of the dataset folder (``md5`` of the ``.dir`` listing,
e.g. ``"9df0...a73.dir"``), so an MLflow run can be matched to a ``dvc.lock`` / git commit.
Nothing here imports the heavy ML packages.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from components.common.env import PROJECT_ROOT

__all__ = [
    "TRACKED_PACKAGES",
    "git_info",
    "package_versions",
    "dataset_hash",
    "content_hash",
    "data_lineage",
    "lineage_tags",
]

log = logging.getLogger(__name__)

# Distribution names (importlib.metadata), not import names.
TRACKED_PACKAGES = (
    "torch", "torchvision", "mmengine", "mmcv", "mmdet", "mmpretrain", "timm", "mlflow",
    "prefect", "dvc", "great_expectations", "numpy",
)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_info(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha|None, "dirty": bool|None, "branch": name|None}``.

    Never raises: outside a git checkout (or without git) every value is None; in a repo
    with no commits yet, ``commit`` is None but ``branch`` and ``dirty`` are known.
    """
    commit = _git(["rev-parse", "--verify", "--quiet", "HEAD"], root) or None
    branch = _git(["symbolic-ref", "--short", "--quiet", "HEAD"], root)
    if branch is None and commit is not None:
        branch = "HEAD"  # detached
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    dirty = None if status is None else bool(status)
    return {"commit": commit, "dirty": dirty, "branch": branch or None}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (None when absent), read from metadata only."""
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    # cached: a process cannot change its own installed versions in a meaningful way,
    # and each lookup scans sys.path (~10 ms)
    out = []
    for name in names:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, None))
    return tuple(out)


# --------------------------------------------------------------------------- data version
def _candidate_locks(dataset_dir: Path) -> list[Path]:
    """``dvc.lock`` files that may record this folder: its parents' (closest first), then the
    project root's."""
    folders = [*dataset_dir.parents, PROJECT_ROOT]
    seen: list[Path] = []
    for folder in folders:
        lock = folder / "dvc.lock"
        if lock not in seen and lock.is_file():
            seen.append(lock)
    return seen


def _lock_entry(dataset_dir: Path, lock: Path) -> dict | None:
    """The ``outs`` entry of ``dvc.lock`` whose path is ``dataset_dir`` (None if absent)."""
    try:
        data = yaml.safe_load(lock.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("cannot read %s: %s", lock, exc)
        return None
    target = dataset_dir.resolve()
    for stage in (data.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            path = out.get("path")
            if path and (lock.parent / path).resolve() == target and out.get("md5"):
                return out
    return None


def _walk_stats(dataset_dir: Path) -> tuple[int, int]:
    """(number of files, total bytes) without reading contents: a cheap staleness check."""
    nfiles = size = 0
    for root, _, files in os.walk(dataset_dir):
        for name in files:
            nfiles += 1
            size += os.stat(os.path.join(root, name)).st_size
    return nfiles, size


def _dvc_build_hash(dataset_dir: Path) -> str:
    """Hash the folder with DVC's own code (dvc_data), exactly as ``dvc add``/``dvc commit``."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import MemoryFileSystem
    from dvc_objects.fs.local import LocalFileSystem

    odb = HashFileDB(MemoryFileSystem(), "/vitdet-hash-staging")
    _, _, obj = build(odb, str(dataset_dir.resolve()), LocalFileSystem(), "md5", dry_run=True)
    return str(obj.hash_info.value)


def dataset_hash(dataset_dir: str | Path, *, use_lock: bool = True) -> str:
    """DVC's hash of a dataset folder (``"<md5>.dir"``).

    Order: (1) the ``md5`` that ``dvc.lock`` records for an ``outs`` path equal to this folder,
    if the lock's ``nfiles``/``size`` still match the folder (a cheap stat-only check that
    catches a folder regenerated outside DVC); (2) otherwise DVC's hashing code on the folder
    (reads every file; same value ``dvc add`` would write).  ``.dvcignore`` rules are not
    applied in (2): keep ignored files out of dataset folders.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {dataset_dir}")
    if use_lock:
        for lock in _candidate_locks(dataset_dir.resolve()):
            entry = _lock_entry(dataset_dir, lock)
            if entry is None:
                continue
            nfiles, size = _walk_stats(dataset_dir)
            if entry.get("nfiles") == nfiles and entry.get("size") == size:
                return str(entry["md5"])
            log.info("%s entry for %s is stale (nfiles/size differ): rehashing", lock, dataset_dir)
            break
    return _dvc_build_hash(dataset_dir)


def content_hash(dataset_dir: str | Path) -> str | None:
    """Fallback data version from ``manifest.json``: its ``content_hash`` field (sha256 over
    every image and label file's sha256, see ``components.data.manifest``), or the sha256 of
    the manifest's canonical JSON for manifests without one. None without a readable manifest.
    """
    manifest = Path(dataset_dir) / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("content_hash"), str):
        return data["content_hash"]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def data_lineage(dataset_dir: str | Path) -> dict[str, str]:
    """Tags ``data.dir``, ``data.dvc_hash``, ``data.content_hash`` (missing ones left out)."""
    dataset_dir = Path(dataset_dir)
    tags = {"data.dir": str(dataset_dir)}
    if not dataset_dir.is_dir():
        return tags
    try:
        tags["data.dvc_hash"] = dataset_hash(dataset_dir)
    except Exception as exc:  # lineage must never fail a stage
        log.warning("DVC hash of %s failed (%s); using manifest content hash only", dataset_dir, exc)
    if (ch := content_hash(dataset_dir)) is not None:
        tags["data.content_hash"] = ch
    return tags


def lineage_tags(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Code and environment tags: ``git.commit``, ``git.dirty``, ``git.branch``, ``pkg.<name>``."""
    tags = {f"git.{k}": str(v) for k, v in git_info(root).items() if v is not None}
    tags.update({f"pkg.{k}": v for k, v in package_versions().items() if v is not None})
    return tags
