"""The default pipeline's quality and time per seed: prepare -> validate -> fine-tune -> evaluate.

Runs the same stage entry points as ``make run`` (``python -m components.data prepare``,
``components.validation``, ``components.train``, ``components.evaluate``) with ``--set seed=N``
for each seed, every output in a temp folder (the project's data, runs and results are not
touched; MLflow goes to a temp store), and prints one JSON line per seed plus a summary: test
bbox AP / AP50, segm AP / AP50, val AP before and after fine-tuning, seconds per stage.

The seed changes the scenes (data generation) and the training randomness together.

    python benchmarks/default_run.py --seeds 0 1 [--set finetune.epochs=1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stage(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(args[:1])} failed (exit {proc.returncode})")
    return time.perf_counter() - t0


def run_seed(seed: int, sets: list[str], tmp: Path) -> dict:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
               VITDET_PIPELINE_ID=f"bench-default-{seed}")
    base = ["--set", f"seed={seed}", "--set", f"data.out={tmp / 'ds'}",
            "--set", f"finetune.work_dir={tmp / 'ft'}", "--set", f"evaluate.out={tmp / 'ev'}",
            *[x for s in sets for x in ("--set", s)]]
    seconds = {
        "prepare": _stage(["components.data", "prepare", *base], env),
        "validate": _stage(["components.validation", "--out", str(tmp / "val"), "--no-progress",
                            *base], env),
        "finetune": _stage(["components.train", "--validated", str(tmp / "val" / "validated.json"),
                            *base], env),
        "evaluate": _stage(["components.evaluate", *base], env),
    }
    m = json.loads((tmp / "ev" / "metrics.json").read_text())
    log = [json.loads(x) for x in (tmp / "ft" / "final" / "train_log.jsonl").read_text().splitlines()]
    val = [r for r in log if "loss" not in r]
    return {
        "seed": seed, "test_bbox_AP": m["bbox_mAP"], "test_bbox_AP50": m["bbox_mAP_50"],
        "test_segm_AP": m["segm_mAP"], "test_segm_AP50": m["segm_mAP_50"],
        "val_bbox_AP50_before": (val[0].get("coco/bbox_mAP_50", 0.0) if val else None),
        "val_bbox_AP50_after": (val[-1].get("coco/bbox_mAP_50") if val else None),
        "test_images": m["num_images"], "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_s": round(sum(seconds.values()), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra params override for every stage (repeatable)")
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix=f"vitdet-bench-default-{seed}-") as tmp:
            rows.append(run_seed(seed, args.set, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    keys = ("test_bbox_AP", "test_bbox_AP50", "test_segm_AP", "test_segm_AP50", "total_s")
    summary = {k: {"mean": round(statistics.mean(r[k] for r in rows), 4),
                   "min": min(r[k] for r in rows), "max": max(r[k] for r in rows)} for k in keys}
    print(json.dumps({"summary": summary, "seeds": args.seeds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
