"""`make run`: the pipeline (prepare -> validate -> finetune -> evaluate -> register) as one tracked execution.

Why a wrapper around `dvc repro`: DVC owns stage ordering, caching and lineage (dvc.lock),
but each stage is its own process. This sets one ``VITDET_PIPELINE_ID`` so every stage's MLflow
run nests under one parent run, puts this venv's ``python`` first on PATH (dvc.yaml says
``python -m ...``), pushes the data to the DVC remote, and prints where the results are.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from components.common.env import PROJECT_ROOT, apply_defaults


def stage_env(pipeline_id: str | None = None) -> dict[str, str]:
    """Environment for stage subprocesses: project defaults, this venv first on PATH."""
    apply_defaults()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["VITDET_PIPELINE_ID"] = pipeline_id or env.get("VITDET_PIPELINE_ID") or new_pipeline_id()
    return env


def new_pipeline_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def dvc(*args: str, env: dict[str, str], check: bool = True) -> int:
    cmd = [sys.executable, "-m", "dvc", *args]
    print("$ dvc " + " ".join(args), flush=True)
    rc = subprocess.call(cmd, cwd=PROJECT_ROOT, env=env)
    if check and rc != 0:
        raise SystemExit(f"`dvc {' '.join(args)}` failed (exit {rc}); the stage's own message is above")
    return rc


def summary(root: Path = PROJECT_ROOT) -> str:
    lines = []
    metrics = root / "results" / "evaluate" / "evaluation.json"
    decision = root / "results" / "register" / "decision.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        lines.append(
            "test AP: bbox {:.3f} (AP50 {:.3f}), mask {:.3f} (AP50 {:.3f}) on {} images; "
            "predictions drawn in results/evaluate/plots/predictions.png".format(
                m.get("bbox_mAP", float("nan")), m.get("bbox_mAP_50", float("nan")),
                m.get("segm_mAP", float("nan")), m.get("segm_mAP_50", float("nan")),
                m.get("num_images", "?"),
            )
        )
    if decision.exists():
        d = json.loads(decision.read_text())
        lines.append(f"registry: {d.get('reason', d)}")
    lines += [
        "results:  dvc metrics show | dvc plots show (results/evaluate/plots/)",
        "MLflow:   mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1  -> http://127.0.0.1:5000",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="dvc repro every stage under one MLflow parent run, then dvc push")
    run.add_argument("--no-push", action="store_true",
                     help="skip `dvc push --with-deps <target>` to the default remote")
    run.add_argument("--force", action="store_true", help="rerun stages even if DVC sees no change")
    run.add_argument("--target", default="register",
                     help="last dvc.yaml stage to reproduce (default: register; its upstream runs first)")
    args = parser.parse_args(argv)

    env = stage_env()
    t0 = time.perf_counter()
    print(f"pipeline id {env['VITDET_PIPELINE_ID']} (MLflow parent run tag pipeline_id)", flush=True)
    dvc("repro", *(["--force"] if args.force else []), args.target, env=env)
    if not args.no_push:  # only what this run reproduced: a clone never has the other stages'
        dvc("push", "--with-deps", args.target, env=env)  # cache (pretraining, experiments)
    print(f"\npipeline finished in {time.perf_counter() - t0:.0f} s\n" + summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
