"""Serving the champion: load time (and where it goes), latency and throughput, REST vs
in-process, at batch 1 and 8, and peak RSS.

Load time is split into: importing the stack (mlflow, torch, mmdet), resolving the registry
alias + fetching the artifacts, rebuilding the detector from its config, loading the weights.
REST numbers come from ``python -m components.serving`` on 127.0.0.1 (a real HTTP round trip with
base64 JPEGs); in-process numbers from the unwrapped pyfunc model on the same decoded images.

    python benchmarks/serving.py [--model models:/vitdet-maskrcnn@champion] [--requests 30]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _stats(seconds: list[float], batch: int) -> dict:
    return {"batch": batch, "requests": len(seconds),
            "p50_ms": round(1000 * statistics.median(seconds), 1),
            "p95_ms": round(1000 * _pct(seconds, 0.95), 1),
            "requests_per_s": round(len(seconds) / sum(seconds), 2),
            "images_per_s": round(batch * len(seconds) / sum(seconds), 2)}


def load_breakdown(model_uri: str) -> tuple[dict, object]:
    t0 = time.perf_counter()
    import mlflow  # noqa: F401
    import mmdet  # noqa: F401
    import torch  # noqa: F401
    t1 = time.perf_counter()
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(model_uri))
    t2 = time.perf_counter()
    from safetensors.torch import load_file

    from components.train.build import build_detector

    config = local / "artifacts" / "config.py"  # the model's own files (code/ holds ours)
    weights = local / "artifacts" / "model.safetensors"
    model = build_detector(config)
    t3 = time.perf_counter()
    model.load_state_dict(load_file(str(weights)), strict=True)
    t4 = time.perf_counter()
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(model_uri)  # what the server does (artifacts cached)
    t5 = time.perf_counter()
    return {"import_stack_s": round(t1 - t0, 2), "fetch_artifacts_s": round(t2 - t1, 2),
            "build_detector_s": round(t3 - t2, 2), "load_weights_s": round(t4 - t3, 2),
            "pyfunc_load_model_s": round(t5 - t4, 2)}, pyfunc.unwrap_python_model()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models:/vitdet-maskrcnn@champion")
    ap.add_argument("--images", default="data/dataset/images/test",
                    help="folder of JPEG/PNG request images (default: the built-in test split)")
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args(argv)
    from components.common.env import apply_defaults

    apply_defaults()
    files = sorted(p for p in (ROOT / args.images).iterdir() if p.suffix in (".jpg", ".png"))[:8]
    blobs = [p.read_bytes() for p in files]
    out: dict = {"model": args.model, "image": f"{len(files)} files from {args.images}"}

    load, model = load_breakdown(args.model)
    out["load"] = load
    import cv2

    arrays = [cv2.imread(str(p))[:, :, ::-1].copy() for p in files]
    model.predict(None, arrays[:1])  # warm-up
    inproc = {}
    for batch in (1, 8):
        times = []
        for i in range(args.requests if batch == 1 else max(3, args.requests // 4)):
            t = time.perf_counter()
            model.predict(None, [blobs[(i + k) % len(blobs)] for k in range(batch)])
            times.append(time.perf_counter() - t)
        inproc[f"batch{batch}"] = _stats(times, batch)
    out["in_process"] = inproc
    out["peak_rss_mb_in_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "components.serving", "--model", args.model,
                             "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    url = None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("server exited before it started")
        if line.startswith("serving "):
            url = line.split(" on ", 1)[1].strip()
    out["server_start_to_ready_s"] = round(time.perf_counter() - t, 2)
    rest = {}
    try:
        for batch in (1, 8):
            times = []
            n = args.requests if batch == 1 else max(3, args.requests // 4)
            for i in range(n + 1):
                rows = [[base64.b64encode(blobs[(i + k) % len(blobs)]).decode()]
                        for k in range(batch)]
                body = json.dumps({"dataframe_split": {"columns": ["image"], "data": rows}})
                req = urllib.request.Request(url, data=body.encode(),
                                             headers={"Content-Type": "application/json"})
                t = time.perf_counter()
                with urllib.request.urlopen(req, timeout=300) as resp:
                    assert resp.status == 200
                    resp.read()
                if i:  # the first request warms the server up
                    times.append(time.perf_counter() - t)
            rest[f"batch{batch}"] = _stats(times, batch)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        out["peak_rss_mb_server"] = round(int(next(
            ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM"))) / 1024, 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out["rest"] = rest
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
