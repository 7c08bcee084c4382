"""Run the dvc.yaml stages one at a time from Python, and isolate runs whose parameters change.

Why here and not in ``flows/``: any driver (the Prefect flow, a script, a test) needs the same
three things, none of them Prefect-specific, one module each:

* :mod:`.plan`: which dvc.yaml stages run, in which order (:func:`dvc_graph`,
  :func:`stage_plan`, :class:`OptionalStep`);
* :mod:`.commands`: one stage (:func:`repro`, :func:`dvc_push`) with its output streamed and
  a failure classified transient or deterministic (:class:`StageError`);
* :mod:`.workspace`: the project itself or an isolated git worktree saved as a DVC
  experiment (:func:`open_workspace`, :func:`save_experiment`, :func:`remove_workspace`).
"""
from components.common.stages.commands import (TRANSIENT_EXIT, StageError, StageRun, dvc,
                                               dvc_push, is_transient, lock_out_hash, repro,
                                               run_logged)
from components.common.stages.plan import (DvcGraph, OptionalStep, StageDrift, dvc_graph,
                                           stage_plan)
from components.common.stages.workspace import (Workspace, WorkspaceError, open_workspace,
                                                remove_workspace, save_experiment, write_params)

__all__ = [
    "TRANSIENT_EXIT", "StageDrift", "StageError", "StageRun", "DvcGraph", "OptionalStep",
    "Workspace", "WorkspaceError", "dvc", "dvc_graph", "stage_plan", "is_transient",
    "run_logged", "repro", "dvc_push", "lock_out_hash", "write_params", "open_workspace",
    "save_experiment", "remove_workspace",
]
