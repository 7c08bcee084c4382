"""What MLflow tracking costs a stage: ``stage_run`` enter/exit, ``log_detector_model``,
``promote`` (targets: enter+exit < 1 s warm, log_model < 2 s warm, promote < 1 s).

Uses a throw-away sqlite store in a temp dir (never the project's ``mlruns/``), the project's
``params.yaml`` and a tiny stand-in detector (config + safetensors), so it needs no training.
Prints one JSON object::

    .venv/bin/python benchmarks/tracking_overhead.py [--repeats 5]

Figures: ``db_create_s`` (first use of a new sqlite store: table creation), ``enter_first_s``
(creates experiment + parent run), ``enter_s``/``exit_s`` (median over later stages of the same
pipeline), ``log_model_first_s`` (first in the process: MLflow scans installed distributions to
check the pinned requirements) and ``log_model_s`` (median of later ones), ``promote_s``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "tracking"))  # tiny_detector (test-only builder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="stages / models to time (default 5)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vitdet-bench-tracking-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ["VITDET_PIPELINE_ID"] = "bench"
    from components.common.env import apply_defaults

    apply_defaults()
    t = time.perf_counter()
    import mlflow
    from safetensors.torch import save_file

    import tiny_detector
    from components.common.params import load_params
    from components.tracking.pyfunc_model import log_detector_model
    from components.tracking.promotion import promote
    from components.tracking.runs import flat_params, stage_run
    import_s = time.perf_counter() - t

    t = time.perf_counter()
    mlflow.MlflowClient().search_experiments()
    db_create_s = time.perf_counter() - t

    params = load_params(ROOT / "params.yaml")
    params["data"]["out"] = str(tmp / "no-dataset")  # data hashing is benchmarked elsewhere
    enter, exit_ = [], []
    for i in range(args.repeats + 1):
        t0 = time.perf_counter()
        with stage_run(f"stage{i}", params, experiment="bench") as run:
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        enter.append(t1 - t0)
        exit_.append(t2 - t1)

    cfg = tmp / "config.py"
    cfg.write_text("classes = ('a',)\n")
    weights = tmp / "model.safetensors"
    save_file(tiny_detector.build(str(cfg)).state_dict(), str(weights))
    log_s, promote_s = [], []
    client = mlflow.MlflowClient()
    for i in range(args.repeats + 1):
        with stage_run("register", params, experiment="bench") as run:
            t0 = time.perf_counter()
            info = log_detector_model(cfg, weights, name="model", builder="tiny_detector:build")
            log_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        promote("bench-model", run.info.run_id, info.model_uri,
                {"bbox_mAP": 0.2 + 0.01 * i}, "d" * 32 + ".dir", min_ap=0.1, margin=0.005)
        promote_s.append(time.perf_counter() - t0)
    assert client.get_registered_model("bench-model").aliases["champion"]

    med = statistics.median
    print(json.dumps({
        "import_s": round(import_s, 3), "db_create_s": round(db_create_s, 3),
        "enter_first_s": round(enter[0], 3), "enter_s": round(med(enter[1:]), 3),
        "exit_s": round(med(exit_), 3), "log_model_first_s": round(log_s[0], 3),
        "log_model_s": round(med(log_s[1:]), 3), "promote_s": round(med(promote_s), 3),
        "repeats": args.repeats, "params_logged": len(flat_params(params)[0]),
        "load_avg_1min": os.getloadavg()[0],
    }))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
