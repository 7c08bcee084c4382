"""``python -m components.proposals``: --help everywhere, train + propose end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from proposals_helpers import TINY_PROPOSALS

from components.common.dvc_metrics import COLUMNS
from components.proposals.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["propose", "--help"]])
def test_help(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m components.proposals" in out
    if argv[0] == "propose":
        assert "--splits" in out and "--no-tracking" in out


def test_module_entry_point() -> None:
    run = subprocess.run([sys.executable, "-m", "components.proposals", "train", "--help"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--no-tracking" in run.stdout


def _params_file(tmp_path: Path, ds: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "data": {"out": str(ds)}, "proposals": {
        "out": str(tmp_path / "bing"), "cache_dir": str(tmp_path / "cache"), **TINY_PROPOSALS}}))
    return path


def test_train_then_propose_end_to_end(bing_ds: Path, tmp_path: Path, capsys) -> None:
    params = _params_file(tmp_path, bing_ds)
    assert main(["train", "--params", str(params), "--no-tracking", "--quiet",
                 "-s", "proposals.max_train_images=16"]) == 0
    out = tmp_path / "bing"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "metrics.json", "model.json",
                                                     "recall.png"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["training"]["images"] == 16 and len(meta["training"]["images_hash"]) == 64
    assert meta["version"] == json.loads((out / "model.json").read_text())["version"]
    assert set(meta["evaluation"]["dr"]["bing"]) == {"10", "100", "1000"}
    assert meta["evaluation"]["dr"]["bing"]["100"] > meta["evaluation"]["dr"]["random"]["100"]
    assert set(json.loads((out / "metrics.json").read_text())) <= set(COLUMNS)
    assert (out / "recall.png").read_bytes()[:4] == b"\x89PNG"
    assert "DR@10" in capsys.readouterr().out

    argv = ["propose", "--params", str(params), "--no-tracking", "--quiet", "--splits", "val"]
    assert main(argv) == 0
    assert "0 reused, 12 computed" in capsys.readouterr().out
    assert main(argv) == 0
    assert "12 reused, 0 computed" in capsys.readouterr().out
    assert (tmp_path / "cache" / "val.npz").is_file()


def test_bad_override_and_missing_data(tmp_path: Path, capsys) -> None:
    params = _params_file(tmp_path, tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--params", str(params), "--no-tracking", "-s", "proposals.nope=1"])
    assert exc.value.code == 2
    assert main(["train", "--params", str(params), "--no-tracking", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "instances_train.json" in err and "prepare" in err
    assert main(["propose", "--params", str(params), "--no-tracking", "--quiet"]) == 1
    assert "components.proposals train" in capsys.readouterr().err
