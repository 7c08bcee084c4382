"""Run the dvc.yaml stages one at a time from Python, and isolate runs whose parameters change.

Why here and not in ``flows/``: any driver (the Prefect flow, a script, a test) needs the same
three things, none of them Prefect-specific:

* **the plan**: which dvc.yaml stages run, in which order (:func:`dvc_graph`, :func:`stage_plan`).
  dvc.yaml stays the one definition of each stage; a driver names the steps it expects, in
  order, and :class:`StageDrift` is raised when the two disagree. Optional steps (pretraining)
  run only the stages the params ask for.
* **one stage**: :func:`repro` runs ``dvc repro --single-item <stage>`` (DVC's skip-if-unchanged,
  run-cache and dvc.lock lineage for free), streams its output, and classifies a failure as
  *transient* (worth a retry: I/O, tracking server or remote unreachable, DVC lock held, exit 75)
  or *deterministic* (a validation failure, a bug: never retried).
* **the workspace**: :func:`open_workspace` runs in the project itself when the run uses the
  project's own ``params.yaml`` unchanged; otherwise it creates a detached ``git worktree`` under
  ``runs/flows/<id>/`` holding HEAD plus the working copy's uncommitted changes, writes the
  params there (comments kept), and shares the project's DVC cache and remotes. The user's
  working copy is never modified. :func:`save_experiment` records the run as a DVC experiment
  (``dvc exp save``: visible with ``dvc exp show`` in the project, restorable with
  ``dvc exp apply``); :func:`remove_workspace` deletes the worktree.
"""
from __future__ import annotations

import codecs
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from components.common.params import apply_overrides

__all__ = [
    "TRANSIENT_EXIT",
    "StageDrift",
    "StageError",
    "StageRun",
    "DvcGraph",
    "Workspace",
    "WorkspaceError",
    "dvc_graph",
    "stage_plan",
    "is_transient",
    "run_logged",
    "repro",
    "dvc_push",
    "lock_out_hash",
    "write_params",
    "open_workspace",
    "save_experiment",
    "remove_workspace",
]

TRANSIENT_EXIT = 75  # EX_TEMPFAIL (sysexits.h): a stage exits with it to ask for a retry

# Failures worth retrying, matched in the last lines of a failed command's output. Everything
# else (validation failures, tracebacks from our code, bad params) is deterministic.
_TRANSIENT = re.compile(
    r"Connection ?(refused|reset|aborted)|ConnectionError|ConnectTimeout|ReadTimeout|"
    r"Max retries exceeded|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|timed out|TimeoutError|Broken pipe|"
    r"HTTP(Error)?[ :]*5(02|03|04)|status(_code)?[ =:]*5(02|03|04)|"
    r"database is locked|Unable to acquire lock|lock is held|"
    r"Input/output error|Stale file handle|Resource temporarily unavailable|"
    r"API request to .* failed",
    re.IGNORECASE,
)
_EXITED = re.compile(r"failed to run: .*, exited with (-?\d+)")
_SKIPPED = re.compile(r"Stage '[^']+' didn't change, skipping|is cached - skipping run")
# DVC's advice for interactive users; noise in a pipeline log (still kept in the tail)
_HINTS = re.compile(r"^(To track the changes with git, run:|git add .*dvc\.lock|To enable auto "
                    r"staging, run:|dvc config core\.autostage true|Use `dvc push` to send)")
_TAIL_LINES = 300


class StageDrift(RuntimeError):
    """dvc.yaml and a driver's stage list disagree (a stage was added, removed or reordered)."""


class WorkspaceError(RuntimeError):
    """An isolated workspace could not be created or recorded."""


class StageError(RuntimeError):
    """A dvc command failed. ``transient`` says whether retrying may help."""

    def __init__(self, what: str, returncode: int, tail: Sequence[str], transient: bool,
                 stage_exit: int | None = None):
        self.what, self.returncode, self.tail = what, returncode, list(tail)
        self.transient, self.stage_exit = transient, stage_exit
        kind = "transient failure (will retry)" if transient else "failed"
        code = f"stage exit {stage_exit}" if stage_exit is not None else f"exit {returncode}"
        last = "\n".join(self.tail[-15:])
        super().__init__(f"{what}: {kind} ({code}); last lines:\n{last}")


@dataclass
class StageRun:
    """One finished ``dvc`` command: ``ran`` is False when DVC skipped an unchanged stage."""

    stage: str
    ran: bool
    seconds: float
    tail: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the plan
@dataclass
class DvcGraph:
    """The stages of one dvc.yaml: ``names`` in dependency order (foreach items expanded as
    ``name@item``), each stage's upstream stages and its declared outputs (paths as written)."""

    names: list[str]
    upstream: dict[str, set[str]]
    outs: dict[str, list[str]] = field(default_factory=dict)


def dvc_graph(root: str | Path) -> DvcGraph:
    """Read ``root/dvc.yaml`` through DVC (so foreach/matrix and params interpolation apply)."""
    import networkx as nx
    from dvc.repo import Repo

    root = Path(root).resolve()
    with Repo(str(root)) as repo:
        graph = repo.index.graph
        ours = {s for s in graph.nodes if Path(s.path) == root / "dvc.yaml"}
        order = [s for s in reversed(list(nx.topological_sort(graph))) if s in ours]
        # ``name`` (not ``addressing``, which is relative to the current directory)
        upstream = {s.name: {d.name for d in graph.successors(s) if d in ours} for s in ours}
        outs = {s.name: [str(o.def_path) for o in s.outs] for s in ours}
    return DvcGraph([s.name for s in order], upstream, outs)


def _group(name: str, order: Sequence[str]) -> str | None:
    """The flow step a stage belongs to: ``pretrain``, ``pretrain@mae`` and ``pretrain_mae``
    all belong to ``pretrain``."""
    for group in sorted(order, key=len, reverse=True):
        if name == group or name.startswith((group + "@", group + "_")):
            return group
    return None


def _method(name: str, group: str) -> str:
    return name[len(group) + 1:] if name != group else group


def _listed(params: Mapping[str, Any], dotted: str) -> set[str]:
    node: Any = params
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return {str(m) for m in (node or [])}


def stage_plan(graph: DvcGraph, order: Sequence[str],
               optional: Mapping[str, str] | Iterable[str] = (),
               params: Mapping[str, Any] | None = None) -> list[str]:
    """The dvc.yaml stages a run executes, in the driver's ``order`` of steps.

    Every stage of a required step runs. An optional step's stages are named ``<step>``,
    ``<step>@<member>`` or ``<step>_<member>``; ``optional`` maps each optional step to the
    dotted params key that lists the members to run (a plain list of steps means
    ``<step>.methods``). The flow's optional steps: ``pretrain`` (``pretrain.methods``, plus the
    stage whose outputs hold ``params["model"]["checkpoint"]``, the backbone fine-tuning loads)
    and ``experiment`` (``experiments.run``). Whatever a planned stage depends on in dvc.yaml
    runs too. So the defaults (``checkpoint: ""``, no lists) run no optional stage.

    Raises :class:`StageDrift` when dvc.yaml has a stage no step claims, lacks a required
    step, a listed member has no stage, or ``order`` puts a stage before one it depends on.
    """
    order, params = list(order), params or {}
    optional = (dict(optional) if isinstance(optional, Mapping)
                else {g: f"{g}.methods" for g in optional})
    groups = {n: _group(n, order) for n in graph.names}
    unknown = sorted(n for n, g in groups.items() if g is None)
    missing = [g for g in order if g not in optional and g not in groups.values()]
    if unknown or missing:
        raise StageDrift(
            "dvc.yaml and the flow's stage list disagree: "
            + (f"dvc.yaml stages unknown to the flow: {unknown}. " if unknown else "")
            + (f"flow stages missing from dvc.yaml: {missing}. " if missing else "")
            + "Add the stage to both (dvc.yaml and the flow's STAGES in flows/pipeline.py).")

    checkpoint = str((params.get("model") or {}).get("checkpoint") or "")
    picked = {n: _method(n, g) for n, g in groups.items() if g in optional}
    selected = {n for n, g in groups.items() if g not in optional}
    for group, key in optional.items():
        listed = _listed(params, key)
        have = {m for n, m in picked.items() if groups[n] == group}
        unlisted = listed - have - ({"random"} if group == "pretrain" else set())
        if unlisted:  # random init needs no stage
            raise StageDrift(f"params {key} lists {sorted(unlisted)} but dvc.yaml has no "
                             f"stage for them (has: {sorted(have)})")
        selected |= {n for n, m in picked.items() if groups[n] == group and (
            m in listed or (group == "pretrain" and checkpoint
                            and _same_path(checkpoint, graph.outs.get(n, []))))}
    todo = list(selected)
    while todo:  # everything a selected stage depends on runs too (DVC's own rule)
        for dep in graph.upstream.get(todo.pop(), ()):
            if dep not in selected:
                selected.add(dep)
                todo.append(dep)
    plan = [n for g in order for n in graph.names if groups[n] == g and n in selected]
    for i, name in enumerate(plan):
        for dep in graph.upstream.get(name, ()):
            if plan.index(dep) > i:
                raise StageDrift(f"the flow runs {name!r} before {dep!r}, but dvc.yaml makes "
                                 f"{name!r} depend on it: fix the order in flows/pipeline.py")
    return plan


def _same_path(path: str, outs: Iterable[str]) -> bool:
    target = Path(path)
    return any(target == Path(o) or Path(o) in target.parents for o in outs)


# --------------------------------------------------------------------------- running commands
def is_transient(returncode: int, tail: Sequence[str], stage_exit: int | None = None) -> bool:
    """Retry only what may succeed next time: exit 75, or a known I/O/network/lock message
    in the last 40 lines. A command killed by a signal (e.g. the OOM killer) is not retried."""
    code = stage_exit if stage_exit is not None else returncode
    if code == TRANSIENT_EXIT:
        return True
    if code < 0:
        return False
    return any(_TRANSIENT.search(line) for line in tail[-40:])


def run_logged(cmd: Sequence[str], cwd: str | Path, env: Mapping[str, str] | None = None,
               on_line: Callable[[str], None] = print, progress_every: float = 30.0
               ) -> tuple[int, list[str], float]:
    """Run ``cmd`` (stderr merged into stdout), passing each output line to ``on_line``.

    Progress-bar redraws (``\\r`` without a newline) are passed at most every
    ``progress_every`` seconds. Returns (exit code, last lines, seconds). If this process is
    interrupted (Ctrl-C, SIGTERM turned into an exception by an orchestrator), the command's
    whole process group gets SIGTERM, then SIGKILL after 30 s.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=str(cwd), env=dict(env) if env else None,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buf, last_progress, shown = "", 0.0, ""

    def emit(line: str, progress: bool = False) -> None:
        nonlocal shown
        line = line.rstrip()
        if line and line != shown:
            tail.append(line)
            on_line(line)
        shown = line if progress else ""

    try:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 65536):
            buf += decoder.decode(chunk)
            *lines, buf = buf.split("\n")
            for line in lines:
                emit(line.rstrip("\r").rsplit("\r", 1)[-1])
            if "\r" in buf.rstrip("\r"):  # keep only the latest redraw of a progress bar
                buf = buf[buf.rstrip("\r").rfind("\r"):]
                if time.monotonic() - last_progress >= progress_every:
                    last_progress = time.monotonic()
                    emit(buf.strip("\r"), progress=True)
        emit((buf + decoder.decode(b"", final=True)).rstrip("\r").rsplit("\r", 1)[-1])
        returncode = proc.wait()
    except BaseException:
        _terminate(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    return returncode, list(tail), time.perf_counter() - start


def _terminate(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except (ProcessLookupError, PermissionError):
            return
        except subprocess.TimeoutExpired:
            continue


def _dvc(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None,
         on_line: Callable[[str], None]) -> tuple[list[str], float]:
    """Run a dvc command; raise :class:`StageError` (classified) when it fails."""
    env = {**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"}

    def show(line: str) -> None:
        if not _HINTS.match(line.strip()):
            on_line(line)

    rc, tail, seconds = run_logged([sys.executable, "-m", "dvc", *args], cwd, env, show)
    if rc != 0:
        found = [m for line in tail if (m := _EXITED.search(line))]
        stage_exit = int(found[-1].group(1)) if found else None
        raise StageError(f"dvc {' '.join(args)}", rc, tail, is_transient(rc, tail, stage_exit),
                         stage_exit)
    return tail, seconds


def repro(stage: str, cwd: str | Path, env: Mapping[str, str] | None = None,
          on_line: Callable[[str], None] = print) -> StageRun:
    """``dvc repro --single-item <stage>`` in ``cwd``: runs the stage only if its deps, params
    or command changed since dvc.lock (else DVC skips it or restores it from its run-cache)."""
    tail, seconds = _dvc(["repro", "--single-item", stage], Path(cwd), env, on_line)
    ran = not any(_SKIPPED.search(line) for line in tail)
    return StageRun(stage, ran, seconds, tail)


def dvc_push(cwd: str | Path, targets: Sequence[str] = (), env: Mapping[str, str] | None = None,
             on_line: Callable[[str], None] = print, label: str | None = None) -> StageRun:
    """``dvc push [targets]`` (stage names; none = every output) to the default remote;
    the result is named ``push:<label>``."""
    tail, seconds = _dvc(["push", *targets], Path(cwd), env, on_line)
    return StageRun(f"push:{label or ','.join(targets) or 'all'}", True, seconds, tail)


def lock_out_hash(root: str | Path, stage: str, out: str) -> str | None:
    """The md5 dvc.lock records for output ``out`` of ``stage`` (a ``.dir`` hash for folders)."""
    lock = Path(root) / "dvc.lock"
    if not lock.exists():
        return None
    data = yaml.safe_load(lock.read_text()) or {}
    for entry in ((data.get("stages") or {}).get(stage) or {}).get("outs") or []:
        if Path(entry.get("path", "")) == Path(out):
            return entry.get("md5")
    return None


# --------------------------------------------------------------------------- params file
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


# --------------------------------------------------------------------------- workspaces
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
    _dvc(args, ws.root, env, on_line)
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
