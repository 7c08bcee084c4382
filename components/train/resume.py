"""Resuming an interrupted fine-tuning run, and why its checkpoints may be unpickled.

The work dir carries ``run_state.json``, written only by this stage::

    {"config_hash": ..., "status": "running" | "failed" | "finished",
     "mlflow_run_id": ..., "log_dirs": [...], "checkpoints": {"epoch_3.pth": "<sha256>"}}

On start, :func:`find_resumable` returns the last checkpoint when the previous run in this work
dir has the same config hash (resolved config + dataset content hash) and did not finish.

**The weights_only decision.** torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7
calls ``torch.load`` without the flag, and a Runner checkpoint holds more than tensors
(optimizer state, the message hub's ``HistoryBuffer``s, numpy scalars/arrays). Found by trying
(``torch.serialization.get_unsafe_globals_in_checkpoint`` on an ``epoch_N.pth`` of this stage):
``numpy._core.multiarray.scalar``, ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``,
``numpy.dtype``, ``mmengine.logging.history_buffer.HistoryBuffer`` and ``builtins.getattr``;
even ``safe_globals`` with all six still fails (numpy's dtype classes are reached through
``getattr``). An allowlist holding ``builtins.getattr`` turns the restricted unpickler back into
a general one, so it would buy nothing. We therefore split files in two classes:

- *published weights* (``final/model.safetensors``, backbone checkpoints): safetensors or
  ``weights_only=True``, always;
- *resume checkpoints*: files this stage wrote into its own work dir. They are loaded with
  ``weights_only=False`` **only** through the ``vitdet-trusted://`` scheme registered below,
  which accepts a file only if (1) its resolved path is inside the resolved work dir,
  (2) ``run_state.json`` in that work dir lists it, and (3) its SHA-256 equals the recorded
  one. Anything else raises. There is no process-wide override
  (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` stays unset) and no global allowlist change.

The residual risk is someone who can write both the checkpoint and ``run_state.json`` in the
work dir; such a user can already change this project's code.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from components.common.atomic import write_json_atomic

__all__ = ["STATE_FILE", "SCHEME", "read_state", "write_state", "update_state",
           "record_checkpoint", "find_resumable", "trusted_uri", "clear_checkpoints",
           "UntrustedCheckpoint"]

STATE_FILE = "run_state.json"
SCHEME = "vitdet-trusted://"


class UntrustedCheckpoint(RuntimeError):
    """A resume checkpoint failed the work-dir / marker / hash checks."""


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_state(work_dir: str | Path) -> dict[str, Any] | None:
    path = Path(work_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None  # torn/foreign file: treat as no previous run


def write_state(work_dir: str | Path, state: dict[str, Any]) -> None:
    write_json_atomic(Path(work_dir) / STATE_FILE, state)


def update_state(work_dir: str | Path, **changes: Any) -> dict[str, Any]:
    state = read_state(work_dir) or {}
    state.update(changes)
    write_state(work_dir, state)
    return state


def _last_checkpoint_name(work_dir: Path) -> str | None:
    """mmengine's ``last_checkpoint`` file holds the path of the newest checkpoint."""
    marker = work_dir / "last_checkpoint"
    if not marker.is_file():
        return None
    path = Path(marker.read_text().strip())
    return path.name if path.parent.resolve() == work_dir.resolve() else None


def record_checkpoint(work_dir: str | Path) -> None:
    """Hash the newest checkpoint and record it as ``last`` in the run state."""
    work_dir = Path(work_dir)
    name = _last_checkpoint_name(work_dir)
    if name is None:
        return
    state = read_state(work_dir) or {}
    checkpoints = {k: v for k, v in state.get("checkpoints", {}).items()
                   if (work_dir / k).is_file() and k != name}
    checkpoints[name] = sha256_file(work_dir / name)
    state.update(checkpoints=checkpoints, last=name)
    write_state(work_dir, state)


def find_resumable(work_dir: str | Path, config_hash: str) -> tuple[Path, dict] | None:
    """The checkpoint to resume from, or None when the previous run finished / differs."""
    work_dir = Path(work_dir)
    state = read_state(work_dir)
    if not state or state.get("config_hash") != config_hash or state.get("status") == "finished":
        return None
    name = state.get("last")
    if not name or not (work_dir / name).is_file():
        return None
    return work_dir / name, state


def clear_checkpoints(work_dir: str | Path) -> None:
    """Remove mmengine checkpoints and the run state of an earlier run (fresh start)."""
    work_dir = Path(work_dir)
    for path in list(work_dir.glob("epoch_*.pth")) + list(work_dir.glob("best_*.pth")) + [
            work_dir / "last_checkpoint", work_dir / STATE_FILE]:
        path.unlink(missing_ok=True)


def trusted_uri(path: Path) -> str:
    return SCHEME + str(Path(path).resolve())


def _verify(path: Path) -> Path:
    real = Path(os.path.realpath(path))
    work_dir = real.parent
    state = read_state(work_dir)
    if state is None:
        raise UntrustedCheckpoint(f"{real}: no {STATE_FILE} next to it (not written by "
                                  "components.train); refusing to unpickle")
    expected = state.get("checkpoints", {}).get(real.name)
    if expected is None:
        raise UntrustedCheckpoint(f"{real}: not listed in {work_dir / STATE_FILE}")
    if sha256_file(real) != expected:
        raise UntrustedCheckpoint(f"{real}: SHA-256 differs from the one recorded when it was "
                                  "saved (modified or replaced); refusing to unpickle")
    return real


def _register_scheme() -> None:
    import torch
    from mmengine.runner import CheckpointLoader

    @CheckpointLoader.register_scheme(prefixes=SCHEME, force=True)
    def load_trusted(filename: str, map_location=None):  # noqa: ANN001 (mmengine signature)
        real = _verify(Path(filename[len(SCHEME):]))
        # weights_only=False: see the module docstring (own work dir + marker + hash checked).
        checkpoint = torch.load(real, map_location=map_location, weights_only=False)
        if not isinstance(checkpoint, dict) or "vitdet_run" not in checkpoint.get("meta", {}):
            raise UntrustedCheckpoint(f"{real}: has no meta['vitdet_run'] stamp")
        return checkpoint


_register_scheme()
