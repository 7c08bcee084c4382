"""What Prefect orchestration costs the pipeline (targets: overhead < 10% of a default run,
no-change rerun < 30 s).

In an isolated copy of the project (own git repo, DVC cache/remote, MLflow store, Prefect
server on a free port; nothing touches the project's own state), with a small configuration
committed to the copy's params.yaml so the flow runs in place:

1. ``cold``: ``python -m flows.pipeline`` with every stage running. ``overhead_s`` = the flow
   run's duration on the Prefect server minus the seconds spent inside its dvc commands
   (stages + pushes); ``overhead_pct`` relative to the flow run's duration.
2. ``rerun``: the same again; DVC skips every stage. ``flow_s`` (server-side duration) and
   ``cli_wall_s`` (process start to exit, incl. Python/Prefect imports).
3. ``deployment``: ``prefect deployment run 'pipeline/local' --watch`` through a process worker
   (no-change run): ``trigger_to_start_s`` = flow run created -> Running (worker poll +
   subprocess start + pull step + flow import), ``trigger_to_done_s`` = CLI wall.

    .venv/bin/python benchmarks/prefect_overhead.py [--toy] [--keep]

``--toy`` swaps in the toy pipeline of tests/flows (second-long stages) to check the
harness without training. Prints one JSON object and writes benchmarks/results/prefect_overhead.json.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT))  # testkit.flows: isolated project copies

from testkit import flows as flowkit  # noqa: E402
from components.common.stages import write_params  # noqa: E402

# Small enough for a CPU run of a few minutes; every key exists in params.yaml.
SMALL = {
    "data.synthetic.num_images": {"train": 16, "val": 4, "test": 8, "unlabeled": 0},
    "data.synthetic.image_size": 128,
    "finetune.img_size": 128,
    "finetune.epochs": 1,
    "finetune.batch_size": 2,
    "evaluate.num_visualizations": 1,
}


def flow_times(api: str, flow_run_id: str) -> dict[str, float]:
    report = flowkit.flow_run_report(api, flow_run_id)
    run = report["flow_run"]
    return {"flow_s": (run.end_time - run.start_time).total_seconds(),
            "trigger_to_start_s": (run.start_time - run.created).total_seconds()}


def run_flow(project: Path, env: dict, api: str) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flows.pipeline"], cwd=project, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"flow failed:\n{(proc.stdout + proc.stderr)[-5000:]}")
    summary = json.loads(proc.stdout[re.search(r"^\{$", proc.stdout, re.M).start():])
    times = flow_times(api, summary["flow_run_id"])
    work = sum(s["seconds"] for s in summary["stages"])
    return {"cli_wall_s": round(wall, 2), "flow_s": round(times["flow_s"], 2),
            "dvc_commands_s": round(work, 2),
            "overhead_s": round(times["flow_s"] - work, 2),
            "overhead_pct": round(100 * (times["flow_s"] - work) / times["flow_s"], 1),
            "stages": summary["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toy", action="store_true", help="toy stages (checks the harness only)")
    ap.add_argument("--keep", action="store_true", help="keep the temp project")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vitdet-bench-prefect-"))
    project = tmp / "project"
    procs = flowkit.Processes()
    try:
        env = flowkit.base_env(tmp / "state", project)
        env.pop("VITDET_STAGE_RETRY_DELAY_S")
        if args.toy:
            flowkit.make_toy(project, env)
            (project / "prefect.yaml").write_text((ROOT / "prefect.yaml").read_text())
        else:
            project.mkdir()
            flowkit.copy_project(project, env)
            write_params(project / "params.yaml", project / "params.yaml", SMALL)
        flowkit.run(["git", "commit", "-qam", "bench config", "--allow-empty"], project, env)
        env["PREFECT_API_URL"] = api = flowkit.start_prefect_server(tmp / "state", procs)

        out = {"config": "toy" if args.toy else SMALL}
        out["cold"] = run_flow(project, env, api)
        out["rerun"] = run_flow(project, env, api)

        prefect = str(flowkit.BIN / "prefect")
        flowkit.run([prefect, "work-pool", "create", "local", "--type", "process"], project, env)
        flowkit.run([prefect, "--no-prompt", "deploy", "--name", "pipeline/local"], project, env)
        procs.start([prefect, "worker", "start", "--pool", "local", "--type", "process"], project,
                    env, tmp / "worker.log")
        time.sleep(5)  # the worker registers and starts polling
        t = time.perf_counter()
        proc = flowkit.run([prefect, "deployment", "run", "pipeline/local", "--watch",
                            "--watch-timeout", "600"], project, env)
        wall = time.perf_counter() - t
        times = flow_times(api, flowkit.flow_run_id_from(proc.stdout + proc.stderr))
        out["deployment"] = {"trigger_to_start_s": round(times["trigger_to_start_s"], 2),
                             "flow_s": round(times["flow_s"], 2),
                             "trigger_to_done_s": round(wall, 2),
                             "worker_poll_s": "PREFECT_WORKER_QUERY_SECONDS (default 10)"}
        out["targets"] = {"rerun_under_30s": out["rerun"]["cli_wall_s"] < 30,
                          "cold_overhead_under_10pct": out["cold"]["overhead_pct"] < 10}
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(out, indent=2)
    print(text)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / ("prefect_overhead_toy.json" if args.toy else "prefect_overhead.json")).write_text(text + "\n")


if __name__ == "__main__":
    main()
