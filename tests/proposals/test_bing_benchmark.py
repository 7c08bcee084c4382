"""``benchmarks/bing_speed.py``: --help, and tiny runs that print one JSON object, without
torch, MLflow or matplotlib (numpy + OpenCV only)."""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bing_speed.py"
TINY = ["--train-images", "8", "--images", "3", "--rounds", "1", "--width", "200", "--height",
        "150", "--top-k", "100"]
BLOCKED = ["torch", "torchvision", "mlflow", "prefect", "matplotlib", "mmcv", "mmdet", "mmengine"]
RUNNER = """
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # import -> ImportError
sys.argv = [{script!r}, *{args!r}]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
"""


def _run(args: list[str]) -> int:
    argv = sys.argv
    sys.argv = [str(SCRIPT), *args]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = argv
    return 0


@pytest.fixture(autouse=True)
def _restore_omp(monkeypatch) -> None:
    """The script sets OMP_NUM_THREADS=1 when unset: set it here so that monkeypatch restores
    the session's value (or its absence) afterwards."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_help(capsys) -> None:
    assert _run(["--help"]) == 0
    assert "500x375" in capsys.readouterr().out


def test_trains_and_times_without_torch_mlflow_or_matplotlib(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = RUNNER.format(blocked=BLOCKED, script=str(SCRIPT), args=[*TINY, "--out", str(out)])
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)                     # stdout is the JSON object only
    assert report == json.loads(out.read_text())
    assert report["image"] == "200x150" and report["img_per_s"] > 0
    assert report["img_per_s_every_size"] > 0 and set(report["dr"]) == {"bing", "random"}
    assert report["train_images"] == 8 and report["train_s"] > 0


def test_loads_a_trained_model(trained, capsys) -> None:
    params, meta = trained
    assert _run([*TINY, "--model", str(Path(params["proposals"]["out"]) / "model.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == meta["version"] and report["train_s"] is None
