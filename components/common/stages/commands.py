"""Run one dvc command from Python: stream its output, classify a failure, time it.

:func:`repro` runs ``dvc repro --single-item <stage>`` (DVC's skip-if-unchanged, run-cache
and dvc.lock lineage for free) and raises :class:`StageError` marked *transient* (worth a
retry: I/O, tracking server or remote unreachable, DVC lock held, exit 75) or
*deterministic* (a validation failure, a bug: never retried).
"""
from __future__ import annotations

import codecs
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

__all__ = ["TRANSIENT_EXIT", "StageError", "StageRun", "is_transient", "run_logged", "repro",
           "dvc", "dvc_push", "lock_out_hash"]

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


def dvc(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None,
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
    tail, seconds = dvc(["repro", "--single-item", stage], Path(cwd), env, on_line)
    ran = not any(_SKIPPED.search(line) for line in tail)
    return StageRun(stage, ran, seconds, tail)


def dvc_push(cwd: str | Path, targets: Sequence[str] = (), env: Mapping[str, str] | None = None,
             on_line: Callable[[str], None] = print, label: str | None = None) -> StageRun:
    """``dvc push [targets]`` (stage names; none = every output) to the default remote;
    the result is named ``push:<label>``."""
    tail, seconds = dvc(["push", *targets], Path(cwd), env, on_line)
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
