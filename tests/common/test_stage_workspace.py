"""Overridden runs execute in a git worktree, are saved as a DVC experiment, and never modify
the user's working copy; plain runs execute in place."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.common import stages
from components.common.stages import WorkspaceError, open_workspace, remove_workspace, save_experiment

quiet = dict(on_line=lambda _: None)


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True,
                          text=True).stdout


def test_plain_run_is_in_place(toy):
    project, _ = toy
    ws = open_workspace(project, "abc", **quiet)
    assert ws.root == project and not ws.isolated
    with pytest.raises(WorkspaceError, match="run isolated"):  # never silently ignored
        open_workspace(project, "abc", overrides={"finetune.epochs": 2}, isolate=False, **quiet)
    with pytest.raises(KeyError, match="unknown key"):
        open_workspace(project, "abc", overrides={"finetune.nope": 1}, **quiet)
    assert not (project / "runs").exists()


def test_overridden_run_is_isolated_shared_and_saved_as_experiment(toy):
    project, env = toy
    # Uncommitted work in the user's copy: the run must use it, and must leave it alone.
    (project / "toy_stage.py").write_text((project / "toy_stage.py").read_text() + "\n# edited\n")
    (project / "notes_untracked.py").write_text("X = 1\n")
    status_before = _git(project, "status", "--porcelain")
    params_before = (project / "params.yaml").read_bytes()

    ws = open_workspace(project, "run-1", overrides={"finetune.epochs": 7}, **quiet)
    assert ws.isolated and ws.root == project / "runs" / "flows" / "run-1"
    assert yaml.safe_load((ws.root / "params.yaml").read_text())["finetune"]["epochs"] == 7
    assert "# passes over the data" in (ws.root / "params.yaml").read_text()
    assert (ws.root / "toy_stage.py").read_text().endswith("# edited\n")
    assert ws.untracked == ["notes_untracked.py"]

    for stage in ("prepare", "validate", "finetune"):
        stages.repro(stage, ws.root, env, **quiet)
    assert (ws.root / "runs/finetune/final/model.txt").read_text() == "epochs=7"
    # one DVC cache and remote for both: the worktree has no cache of its own
    digest = stages.lock_out_hash(ws.root, "prepare", "data/dataset").removesuffix(".dir")
    assert (project / ".dvc/cache/files/md5" / digest[:2] / (digest[2:] + ".dir")).exists()
    assert not (ws.root / ".dvc/cache").exists()
    stages.dvc_push(ws.root, ["prepare"], env, **quiet)
    assert any((project / ".dvc-remote").rglob("*.dir"))

    for stage in ("evaluate", "register"):
        stages.repro(stage, ws.root, env, **quiet)
    assert save_experiment(ws, "exp-run-1", env=env, **quiet) == "exp-run-1"
    remove_workspace(ws, **quiet)

    assert not ws.root.exists()
    assert _git(project, "worktree", "list").count("\n") == 1
    assert (project / "params.yaml").read_bytes() == params_before
    assert _git(project, "status", "--porcelain") == status_before
    listing = subprocess.run([sys.executable, "-m", "dvc", "exp", "list", "--name-only"],
                             cwd=project, env=env, capture_output=True, text=True, check=True)
    assert "exp-run-1" in listing.stdout.split()
    ref = next(line.split()[1] for line in _git(project, "show-ref").splitlines()
               if line.endswith("/exp-run-1"))
    saved = _git(project, "show", f"{ref}:params.yaml")
    assert yaml.safe_load(saved)["finetune"]["epochs"] == 7
    assert _git(project, "show", f"{ref}:notes_untracked.py") == "X = 1\n"
    assert "outs" in yaml.safe_load(_git(project, "show", f"{ref}:dvc.lock"))["stages"]["finetune"]


def test_isolation_needs_a_commit(tmp_path: Path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("finetune: {epochs: 1}\n")
    with pytest.raises(WorkspaceError, match="no git commit"):
        open_workspace(tmp_path, "x", overrides={"finetune.epochs": 2}, **quiet)
