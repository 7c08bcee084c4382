"""The two pretraining benchmarks run with only torch: mmcv/mmengine/mmdet/mlflow, torchvision,
PIL, tqdm and yaml are made unimportable in the child process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ["mmcv", "mmengine", "mmdet", "mmpretrain", "mlflow", "prefect", "dvc", "tqdm", "PIL",
           "torchvision", "matplotlib", "cv2", "pycocotools", "yaml", "great_expectations"]
RUNNER = """
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # import -> ImportError
for script, args in {runs!r}:
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        assert not exc.code, exc.code
leaked = [n for n in {blocked!r} if sys.modules.get(n) is not None]
assert not leaked, leaked
"""


def test_benchmarks_run_torch_only() -> None:
    tiny = ["--img", "32", "--batch", "4", "--steps", "1", "--warmup", "0", "--threads", "1"]
    runs = [(str(ROOT / "benchmarks" / "mae_speedup.py"), tiny),
            (str(ROOT / "benchmarks" / "pretrain_throughput.py"), [*tiny, "--tokenizer"])]
    code = RUNNER.format(blocked=BLOCKED, runs=runs)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    parts = {r["part"]: r for r in lines if r["bench"] == "mae_speedup"}
    assert set(parts) == {"a_encoder_fwd_bwd", "b_train_step"}
    assert all(r["speedup"] > 0 for r in parts.values())
    methods = {r["method"] for r in lines if r["bench"] == "pretrain_throughput"}
    assert methods == {"supervised", "mocov3", "mae", "beit", "mocov2", "byol", "tokenizer"}
    assert all(r["img_per_s"] > 0 for r in lines if r["bench"] == "pretrain_throughput")
