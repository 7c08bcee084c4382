"""Helpers for the flow tests and benchmarks/prefect_overhead.py: isolated project copies, a toy
pipeline with the real stage names, background processes stopped by PID, Prefect queries.

Every flow run works in a copy of the project under a temp dir with its own git repo, DVC
cache + local remote, MLflow store and PREFECT_HOME; the real project's state is never touched.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {proc.returncode}\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def base_env(state: Path, project: Path) -> dict[str, str]:
    """Environment pointing every store at ``state`` (never the real project's)."""
    state.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PREFECT_HOME=str(state / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlruns' / 'mlflow.db'}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(project / ".dvc" / "site-cache"),
        GX_ANALYTICS_ENABLED="false",
        GIT_AUTHOR_NAME="pytest", GIT_AUTHOR_EMAIL="pytest@localhost",
        GIT_COMMITTER_NAME="pytest", GIT_COMMITTER_EMAIL="pytest@localhost",
        VITDET_STAGE_RETRY_DELAY_S="0.5",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VITDET_PIPELINE_ID", None)
    return env


def init_repo(project: Path, env: dict[str, str]) -> None:
    """git init + commit, dvc init, default local remote ``local`` at ``.dvc-remote``."""
    run(["git", "init", "-q", "-b", "main"], project, env)
    if not (project / ".dvc").exists():
        run([PY, "-m", "dvc", "init", "-q"], project, env)
    run([PY, "-m", "dvc", "remote", "add", "-f", "-d", "local", ".dvc-remote"], project, env)
    with open(project / ".gitignore", "a") as fh:
        fh.write("\n.dvc-remote/\n.dvc/site-cache/\nmlruns/\n.run/\nruns/\n.prefect/\n"
                 "/data/dataset\n/results\ncalls.log\n")
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-q", "-m", "test project"], project, env)


def copy_code(dst: Path, extra: tuple[str, ...] = ()) -> None:
    """Copy the project's code (what git would track; no state, no venv) into ``dst``."""
    names = ["components", "flows", *extra]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dst / name)


TOY_STAGE = textwrap.dedent('''
    """A toy stage: the pipeline's file contract in a few lines (used by tests/flows only)."""
    import json, os, sys, time
    from pathlib import Path
    import yaml

    stage = sys.argv[1]
    p = yaml.safe_load(open("params.yaml"))
    with open("calls.log", "a") as fh:
        fh.write(stage + "\\n")
    ds = Path(p["data"]["out"])
    if stage == "prepare":
        ds.mkdir(parents=True, exist_ok=True)
        (ds / "images.txt").write_text(str(p["data"]["synthetic"]["num_images"]))
        (ds / "source.txt").write_text(p["data"]["source"])
    elif stage == "validate":
        out = Path("results/validation"); out.mkdir(parents=True, exist_ok=True)
        bad = (ds / "source.txt").read_text() == "corrupt"
        (out / "report.md").write_text("## toy suite\\n\\n" + ("FAIL: source.txt says corrupt" if bad else "all passed") + "\\n")
        (out / "report.html").write_text("<p>toy</p>")
        (out / "summary.json").write_text(json.dumps({"success": not bad}))
        if bad:
            print("validation failed: data/dataset/source.txt is corrupt", file=sys.stderr)
            sys.exit(1)
        (out / "validated.json").write_text("{}")
    elif stage == "finetune":
        flaky = Path(os.environ.get("TOY_FLAKY", "/nonexistent"))
        if flaky.exists():
            flaky.unlink()
            print("mlflow.exceptions.MlflowException: API request to http://127.0.0.1:5000 failed: Connection refused", file=sys.stderr)
            sys.exit(1)
        out = Path("runs/finetune/final"); out.mkdir(parents=True, exist_ok=True)
        (out / "model.txt").write_text(f"epochs={p['finetune']['epochs']}")
    elif stage == "evaluate":
        out = Path("results/evaluate"); out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"AP": 0.25, "mask_AP": 0.2}))
        (out / "evaluation.json").write_text(json.dumps({"bbox_mAP": 0.25, "segm_mAP": 0.2, "num_images": 4}))
        (out / "plots").mkdir(exist_ok=True)
    elif stage == "register":
        out = Path("results/register"); out.mkdir(parents=True, exist_ok=True)
        (out / "decision.json").write_text(json.dumps({"promoted": True, "model_name": "toy",
            "version": "1", "champion": "1", "reason": "first model above min_ap"}))
''')

TOY_DVC = {
    "stages": {
        "prepare": {"cmd": "python toy_stage.py prepare", "deps": ["toy_stage.py"],
                    "params": ["seed", "data"], "outs": ["data/dataset"]},
        "validate": {"cmd": "python toy_stage.py validate", "deps": ["data/dataset"],
                     "params": ["validation"],
                     "outs": [{"results/validation/validated.json": {"cache": False}},
                              {"results/validation/report.md": {"cache": False}}],
                     "metrics": [{"results/validation/summary.json": {"cache": False}}]},
        "finetune": {"cmd": "python toy_stage.py finetune",
                     "deps": ["data/dataset", "results/validation/validated.json"],
                     "params": ["finetune"], "outs": ["runs/finetune/final"]},
        "evaluate": {"cmd": "python toy_stage.py evaluate",
                     "deps": ["data/dataset", "runs/finetune/final"], "params": ["evaluate"],
                     "metrics": [{"results/evaluate/metrics.json": {"cache": False}}]},
        "register": {"cmd": "python toy_stage.py register",
                     "deps": ["results/evaluate/metrics.json", "runs/finetune/final"],
                     "params": ["register"],
                     "outs": [{"results/register/decision.json": {"cache": False}}]},
    }
}

TOY_PARAMS = """\
# toy params: comments must survive overrides
seed: 0
data:
  source: synthetic   # synthetic | corrupt
  out: data/dataset
  synthetic:
    num_images: {train: 4, val: 2}
validation: {decode_images: true}
finetune:
  epochs: 1           # passes over the data
evaluate: {split: test}
register: {min_ap: 0.0}
"""


def make_toy(project: Path, env: dict[str, str]) -> Path:
    """A project with the real components/flows code and a toy dvc.yaml (same stage names)."""
    project.mkdir(parents=True)
    copy_code(project)
    (project / "toy_stage.py").write_text(TOY_STAGE)
    (project / "dvc.yaml").write_text(yaml.safe_dump(TOY_DVC, sort_keys=False))
    (project / "params.yaml").write_text(TOY_PARAMS)
    init_repo(project, env)
    return project


def healthy(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


class Processes:
    """Background processes started by a test; stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
        fh = open(log, "w")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        fh.close()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def start_prefect_server(state: Path, procs: Processes) -> str:
    """A Prefect server on a free port with PREFECT_HOME under ``state``; returns the API URL."""
    port = free_port()
    server = procs.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                          "--port", str(port), "--analytics-off"], state, base_env(state, state),
                         state / "server.log")
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 180
    while not healthy(url + "/health"):
        if server.poll() is not None or time.time() > deadline:
            raise RuntimeError("Prefect server did not start:\n"
                               + (state / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    return url


def flow_run_report(api: str, flow_run_id: str) -> dict:
    """State, task runs (name -> state) and artifacts (key -> artifact) of a flow run."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId,
                                                FlowRunFilter, FlowRunFilterId)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    return {"state": run.state.type.value, "flow_run": run,
            "tasks": {t.name: t.state.type.value for t in tasks},
            "task_runs": tasks,
            "artifacts": {a.key: a for a in arts if a.key}}


def flow_run_id_from(output: str) -> str:
    """The flow run id printed by `python -m flows.pipeline` or `prefect deployment run`."""
    found = re.findall(r"flow-run/([0-9a-f-]{36})", output) or re.findall(r"UUID: ([0-9a-f-]{36})", output)
    assert found, f"no flow run id in output:\n{output[-3000:]}"
    return found[0]


def copy_project(dst: Path, env: dict[str, str]) -> Path:
    """An isolated copy of this project as the user sees it (tracked + untracked, not ignored
    files: no venv, data, caches or stores), committed in a fresh git repo."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file() or (rel.startswith(".dvc/") and rel not in (".dvc/config", ".dvc/.gitignore")):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    init_repo(dst, env)
    return dst
