"""Where a run executes: the project itself, or an isolated git worktree saved as a DVC
experiment.

:func:`open_workspace` runs in the project when the run uses the project's own
``params.yaml`` unchanged; otherwise it creates a detached ``git worktree`` under
``runs/flows/<id>/`` holding HEAD plus the working copy's uncommitted changes, writes the
params there (comments kept), and shares the project's DVC cache and remotes. The user's
working copy is never modified. :func:`save_experiment` records the run as a DVC experiment
(``dvc exp save``: ``dvc exp show`` / ``dvc exp apply`` in the project);
:func:`remove_workspace` deletes the worktree.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from components.common.params import apply_overrides
from components.common.stages.commands import dvc

__all__ = ["Workspace", "WorkspaceError", "write_params", "open_workspace", "save_experiment",
           "remove_workspace"]


class WorkspaceError(RuntimeError):
    """An isolated workspace could not be created or recorded."""


def write_params(src: str | Path, dst: str | Path, overrides: Mapping[str, Any]) -> None:
    """Copy params ``src`` to ``dst`` with dotted ``overrides`` applied, keeping comments.

    Keys must already exist (same rule and message as :func:`components.common.params.
    apply_overrides`, which validates first). ruamel.yaml comes with DVC.
    """
    from ruamel.yaml import YAML

    text = Path(src).read_text()
    apply_overrides(yaml.safe_load(text) or {}, overrides)  # raises KeyError on unknown keys
    rt = YAML()
    rt.preserve_quotes = True
    doc = rt.load(text)
    for dotted, value in overrides.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w") as fh:
        rt.dump(doc, fh)


@dataclass
class Workspace:
    """Where a pipeline run executes. ``root == project`` unless ``isolated``."""

    project: Path
    root: Path
    isolated: bool
    overrides: dict[str, Any] = field(default_factory=dict)
    untracked: list[str] = field(default_factory=list)  # overlaid files git does not track yet


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {project}: {proc.stderr.strip()}")
    return proc


def open_workspace(project: str | Path, run_id: str, params_path: str | Path = "params.yaml",
                   overrides: Mapping[str, Any] | None = None, isolate: bool | None = None,
                   on_line: Callable[[str], None] = print) -> Workspace:
    """The workspace a run executes in (see the module docstring).

    ``isolate=None`` isolates exactly when the run's params differ from the project's
    ``params.yaml`` (overrides given, or another params file). Isolation needs a git commit.
    """
    project = Path(project).resolve()
    overrides = dict(overrides or {})
    src = Path(params_path)
    src = (src if src.is_absolute() else project / src).resolve()
    if not src.is_file():
        raise WorkspaceError(f"params file not found: {src}")
    own = src == project / "params.yaml"
    if isolate is None:
        isolate = bool(overrides) or not own
    if not isolate:
        if overrides or not own:
            raise WorkspaceError("overrides and other params files run isolated (the project's "
                                 "params.yaml is never rewritten): drop isolate=False")
        return Workspace(project, project, False)

    apply_overrides(yaml.safe_load(src.read_text()) or {}, overrides)  # unknown key: KeyError
    if _git(project, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        raise WorkspaceError(
            f"{project} has no git commit: runs with overrides or another params file execute in "
            "a git worktree and are saved as a DVC experiment on top of a commit. "
            "Commit once (git add -A && git commit -m init) or run without overrides.")
    root = project / "runs" / "flows" / re.sub(r"[^A-Za-z0-9._-]", "-", run_id)
    if root.exists():
        raise WorkspaceError(f"{root} already exists (a previous run with this id?): remove it "
                             f"with `git worktree remove --force {root}`")
    on_line(f"isolated workspace: git worktree {root} (HEAD + uncommitted changes)")
    _git(project, "worktree", "add", "--detach", str(root), "HEAD")
    try:
        untracked = _overlay(project, root)
        write_params(src, root / "params.yaml", overrides)
        _share_dvc(project, root)
        # Outputs recorded in dvc.lock come from the shared cache; missing ones are rebuilt.
        subprocess.run([sys.executable, "-m", "dvc", "checkout", "--quiet"], cwd=root,
                       capture_output=True, text=True)
    except BaseException:
        _git(project, "worktree", "remove", "--force", str(root), check=False)
        raise
    return Workspace(project, root, True, overrides, untracked)


def _overlay(project: Path, root: Path) -> list[str]:
    """Copy the working copy's uncommitted changes (modified, deleted, untracked but not
    ignored files) into the worktree, so the run uses the code the user sees."""
    out = _git(project, "ls-files", "-z", "--modified", "--others", "--exclude-standard").stdout
    untracked = set(_git(project, "ls-files", "-z", "--others", "--exclude-standard").stdout
                    .split("\0"))
    for rel in filter(None, dict.fromkeys(out.split("\0"))):
        if rel.startswith(".dvc/") and rel != ".dvc/config":
            continue  # DVC's own state (site cache, tmp) stays with the project
        src, dst = project / rel, root / rel
        if src.is_file() or src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
        elif dst.exists():
            dst.unlink()
    return sorted(u for u in untracked if u and not u.startswith(".dvc/"))


def _share_dvc(project: Path, root: Path) -> None:
    """Point the worktree's DVC at the project's cache and remotes (absolute paths), so data
    is not copied twice and ``dvc push`` reaches the same remote."""
    from dvc.config import Config
    from dvc.repo import Repo

    local_cfg = project / ".dvc" / "config.local"
    if local_cfg.exists():
        shutil.copy2(local_cfg, root / ".dvc" / "config.local")
    with Repo(str(project)) as repo:
        cache_dir = str(repo.cache.local_cache_dir)
        remotes = {name: str(conf["url"]) for name, conf in repo.config["remote"].items()
                   if "url" in conf and not re.match(r"\w+://", str(conf["url"]))}
    with Config(dvc_dir=str(root / ".dvc")).edit("local") as conf:
        conf.setdefault("cache", {})["dir"] = cache_dir
        for name, url in remotes.items():
            conf.setdefault("remote", {}).setdefault(name, {})["url"] = url


def save_experiment(ws: Workspace, name: str, stages: Sequence[str] = (),
                    env: Mapping[str, str] | None = None,
                    on_line: Callable[[str], None] = print) -> str | None:
    """Record an isolated run as DVC experiment ``name`` (params, dvc.lock, metrics, code
    changes; outputs are in the shared cache), caching the outputs of ``stages`` (the ones
    the run executed; default all). In-place runs return None: their dvc.lock in the
    working copy is the record."""
    if not ws.isolated:
        return None
    args = ["exp", "save", "--force", "-n", name, *stages]
    for rel in ws.untracked:
        args += ["--include-untracked", rel]
    env = dict(env if env is not None else os.environ)
    for key in ("name", "email"):  # the experiment is a git commit: it needs an author
        if not _git(ws.root, "config", f"user.{key}", check=False).stdout.strip():
            value = "vitdet pipeline" if key == "name" else "vitdet-pipeline@localhost"
            for who in ("AUTHOR", "COMMITTER"):
                env.setdefault(f"GIT_{who}_{key.upper()}", value)
    dvc(args, ws.root, env, on_line)
    on_line(f"saved as DVC experiment {name!r}: `dvc exp show`, `dvc exp apply {name}` "
            f"in {ws.project}")
    return name


def remove_workspace(ws: Workspace, keep: bool = False,
                     on_line: Callable[[str], None] = print) -> None:
    """Delete an isolated run's worktree (or say where it was kept)."""
    if not ws.isolated:
        return
    if keep:
        on_line(f"kept workspace {ws.root} (remove with: git worktree remove --force {ws.root})")
        return
    _git(ws.project, "worktree", "remove", "--force", str(ws.root), check=False)
    if ws.root.exists():
        shutil.rmtree(ws.root, ignore_errors=True)
    _git(ws.project, "worktree", "prune", check=False)
